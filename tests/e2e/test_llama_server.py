"""llama.cpp's server as Guichet's managed model engine, with the real model: several turns decoded together,
the same checks on their answers, and no server left behind when Guichet stops."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from bot.answer.outcomes import ANSWERS
from bot.answer.pipeline import Answerer
from bot.answer.steps.answer_composer import AnswerComposer
from bot.engines import llama_server
from bot.engines.model_store import QWEN
from bot.settings import Settings
from tests.e2e.conftest import running_server

pytestmark = pytest.mark.e2e

QUESTIONS = (
    ("Combien coûte un passeport pour un adulte ?", "86"),
    ("Quels sont les horaires de la mairie le samedi ?", "9"),
    ("Combien coûte la location de la salle des fêtes pour un habitant ?", ""),
)


@pytest.fixture(scope="module")
def bot(real_demo_index):
    answerer = Answerer.from_settings(Settings(llm_backend="llama_server", llm_slots=3, index_dir=real_demo_index))
    yield answerer
    answerer.step(AnswerComposer).model.close()


def test_turns_in_progress_are_answered_together_with_their_sources(bot):
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        turns = list(pool.map(bot.answer, (q for q, _ in QUESTIONS)))
    for turn, (_, figure) in zip(turns, QUESTIONS, strict=True):
        assert turn.outcome in ANSWERS, turn.trace
        assert turn.citations and figure in turn.answer
    assert bot.info["llm"] == QWEN.file and len(bot.info["llm_sha256"]) == 64


def test_the_engine_refuses_and_routes_like_the_in_process_one(bot):
    assert bot.answer("Quelle est la météo demain à Valbourg ?").outcome == "refused_out_of_scope"
    unknown = bot.answer("Quel est le numéro de téléphone du club de pétanque ?")
    assert unknown.outcome == "unanswerable_no_sources" and "01 99 00 12 34" in unknown.answer


def test_the_server_it_built_answers_from_repacked_weights_on_any_cpu(bot):
    """``build-server`` fixes the AMX kernels' tile configuration, so llama.cpp repacks the weights on a CPU with
    AMX too (unfixed, the first prompt ended in a segmentation fault): the turns above were answered so."""
    (server,) = (s for s in llama_server._MANAGED.values() if s.options.slots == 3)
    assert server.options.repacking
    assert llama_server.build_record(server.options.binary)["amx_tile_config_fixed"] is True


def serving_on(command: list[str], port: str) -> bool:
    return "guichet.cli" in command and any(command[i : i + 2] == ["--port", port] for i in range(len(command)))


@pytest.mark.parametrize("workers", [1, 2])
def test_the_service_starts_one_engine_for_its_workers_and_stops_it(real_demo_index, workers):
    environment = {"GUICHET_LLM_BACKEND": "llama_server", "GUICHET_LLM_SLOTS": "2"}
    with running_server(real_demo_index, environment, args=("--workers", str(workers))) as (base, _):
        port = base.rsplit(":", 1)[1]
        guichet = next(p for p in psutil.process_iter(["cmdline"]) if serving_on(p.info["cmdline"] or [], port))
        children = guichet.children(recursive=True)
        ours = [p for p in children if p.name() == "llama-server"]
        assert len(ours) == 1 and len(children) >= 1 + (workers if workers > 1 else 0)  # one engine for all
        question = {"text": "Combien coûte un passeport pour un adulte ?"}
        turn = httpx.post(f"{base}/api/v1/turn", json=question, timeout=120)
        assert turn.status_code == 200 and "86" in turn.json()["answer"], turn.text
    gone = psutil.wait_procs(ours, timeout=30)[1]
    assert not gone, "llama-server still running after guichet serve stopped"
