"""Two communes served by one `guichet serve`, the real models loaded once for both (#34)."""

from __future__ import annotations

import shutil

import httpx
import pytest

from bot.answer.outcomes import ANSWERS
from bot.settings import REPO_ROOT
from bot.state.communes import CommuneRegistry
from bot.state.database import sqlite_url
from tests.conftest import write
from tests.e2e.conftest import running_server
from tests.unit.test_communes import MONTAIGU_PHONE, POOL_PAGE, VALBOURG_PHONE, montaigu_town

pytestmark = pytest.mark.e2e


def test_two_communes_one_server_each_resident_their_own_documents(real_demo_index, tmp_path):
    from bot.answer.pipeline import resolve_embedder_path
    from bot.engines.embedder import SentenceTransformerEmbedder
    from bot.settings import Settings
    from ingestion.builder import build

    valbourg, montaigu, deployment = tmp_path / "valbourg", tmp_path / "montaigu", tmp_path / "deployment"
    write(valbourg / "town.yaml", (REPO_ROOT / "config" / "town.yaml").read_text(encoding="utf-8"))
    shutil.copytree(real_demo_index, valbourg / "index")
    write(montaigu / "town.yaml", montaigu_town())
    write(montaigu / "corpus" / "piscine.md", POOL_PAGE)
    build([montaigu / "corpus"], montaigu / "index", SentenceTransformerEmbedder(resolve_embedder_path(Settings())))
    registry = CommuneRegistry(sqlite_url(deployment / "guichet.db"))
    registry.add("valbourg", "Valbourg-sur-Loire", valbourg, ["valbourg.localhost"], [])
    registry.add("montaigu", "Montaigu-les-Prés", montaigu, ["montaigu.localhost"], [])

    env = {"GUICHET_STAFF_DIR": str(deployment)}
    with running_server(real_demo_index, env=env, ready_within=300) as (base, printed):
        ready = httpx.get(f"{base}/readyz", timeout=10).json()

        def ask(host: str, text: str) -> dict:
            reply = httpx.post(f"{base}/api/v1/turn", json={"text": text}, headers={"host": host}, timeout=180)
            assert reply.status_code == 200, reply.text
            return reply.json()

        passport = ask("valbourg.localhost", "Combien coûte un passeport pour un adulte ?")
        pool_reply = ask("montaigu.localhost", "Combien coûte l'entrée à la piscine pour un adulte ?")
        passport_in_montaigu = ask("montaigu.localhost", "Combien coûte un passeport pour un adulte ?")
        nowhere = httpx.post(f"{base}/api/v1/turn", json={"text": "bonjour"}, timeout=10)
    assert set(ready["communes"]) == {"valbourg", "montaigu"}
    assert "Communes servies : montaigu, valbourg" in printed()
    assert passport["outcome"] in ANSWERS and passport["citations"][0]["source"] == "carte-identite-passeport.html"
    assert pool_reply["outcome"] in ANSWERS and pool_reply["citations"][0]["source"] == "piscine.md"
    assert "3 €" in pool_reply["answer"]
    # Montaigu's documents say nothing of passports: nothing of Valbourg's reaches its residents
    assert "86" not in passport_in_montaigu["answer"] and VALBOURG_PHONE not in passport_in_montaigu["answer"]
    if passport_in_montaigu["outcome"] not in ANSWERS:
        assert MONTAIGU_PHONE in passport_in_montaigu["answer"]
    assert nowhere.status_code == 404  # 127.0.0.1 is no commune's host name
