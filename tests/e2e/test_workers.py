"""Several worker processes behind one port, sharing one read-only index (`guichet serve --workers 2`)."""

import httpx
import pytest

from bot.answer.outcomes import ANSWERS
from tests.e2e.conftest import running_server

pytestmark = pytest.mark.e2e
QUESTION = {"text": "Combien coûte un passeport pour un adulte ?"}


def test_two_workers_answer_from_the_same_index(real_demo_index):
    index_files = sorted(p.name for p in real_demo_index.rglob("*"))
    with running_server(real_demo_index, args=("--workers", "2"), ready_within=300) as (base, _):
        # /readyz says ready once both workers have loaded, whichever one a fresh connection reaches
        replies = [httpx.post(f"{base}/api/v1/turn", json=QUESTION, timeout=120) for _ in range(3)]
    assert all(r.status_code == 200 and r.json()["outcome"] in ANSWERS for r in replies)
    assert sorted(p.name for p in real_demo_index.rglob("*")) == index_files  # read-only: nothing written
