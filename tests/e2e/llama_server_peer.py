"""llama-cpp-python's own OpenAI-compatible server, the backend tests' peer, run with the weight layout Guichet
chooses for this llama.cpp build (the server's settings have no option for it; see
``bot.engines.llm.weight_layout``): ``python -m tests.e2e.llama_server_peer --model M --port P``."""

import runpy

from bot.engines.llm import weight_layout

if __name__ == "__main__":
    with weight_layout("auto"):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
