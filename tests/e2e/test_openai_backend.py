"""The OpenAI-compatible backend against a real serving engine: llama-cpp-python's own server, on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.answer.outcomes import ANSWERS
from bot.answer.pipeline import Answerer, resolve_llm_path
from bot.answer.steps.answer_composer import AnswerComposer
from bot.settings import Settings
from tests.e2e.conftest import free_port, wait_until_up

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def model_server():
    port = free_port()
    command = [sys.executable, "-m", "tests.e2e.llama_server_peer", "--model", str(resolve_llm_path(Settings()))]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--verbose", "False"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_up(process, f"{url}/models", 120, "llama_cpp.server")
    yield url
    process.terminate()
    process.communicate(timeout=30)  # also closes the stderr pipe


@pytest.fixture(scope="module")
def served_bot(model_server, real_demo_index):
    settings = Settings(
        llm_backend="openai", llm_api_url=model_server, llm_api_json_format="json_object", index_dir=real_demo_index
    )
    bot = Answerer.from_settings(settings)
    yield bot
    bot.step(AnswerComposer).model.close()


def test_the_served_model_answers_with_sources_and_checked_figures(served_bot):
    turn = served_bot.answer("Combien coûte un passeport pour un adulte ?")
    assert turn.outcome in ANSWERS, turn.trace
    assert "86" in turn.answer and turn.citations[0].source == "carte-identite-passeport.html"
    assert turn.trace["llm"]["completion_tokens"] > 0 and served_bot.info["llm_sha256"].startswith("served at")


def test_the_served_model_streams_and_refuses_like_the_in_process_one(served_bot):
    drafts = []
    turn = served_bot.answer("Quels documents faut-il pour refaire une carte d'identité ?", on_draft=drafts.append)
    assert turn.outcome in ANSWERS and drafts and all(d.strip() for d in drafts)
    assert served_bot.answer("Quelle est la météo demain à Valbourg ?").outcome == "refused_out_of_scope"
    unknown = served_bot.answer("Quel est le numéro de téléphone du club de pétanque ?")
    assert unknown.outcome == "unanswerable_no_sources" and "01 99 00 12 34" in unknown.answer


def test_an_unreachable_model_server_gives_the_polite_error(real_demo_index):
    settings = Settings(
        llm_backend="openai", llm_api_url=f"http://127.0.0.1:{free_port()}/v1", index_dir=real_demo_index
    )
    bot = Answerer.from_settings(settings)
    turn = bot.answer("Combien coûte un passeport pour un adulte ?")
    bot.step(AnswerComposer).model.close()
    assert turn.outcome == "error_llm" and "problème technique" in turn.answer
