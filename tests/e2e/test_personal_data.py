"""After an end-to-end run full of personal data, nothing unmasked is in the logs or in any stored file.

The real server and models answer web, streamed and phone turns that carry an e-mail address, phone numbers, a
social security number, an IBAN, a card number, a birth date and a postal address; a resident votes; staff run a
question set holding the same data and validate its answers. Then every byte the service printed or stored is
scanned for the raw data.
"""

import json
import os
import subprocess
import sys
from datetime import date

import httpx
import pytest

from bot.settings import REPO_ROOT
from bot.state.database import state_url
from bot.web.feedback import FeedbackStore
from tests.conftest import write
from tests.e2e.conftest import running_server

pytestmark = pytest.mark.e2e

PERSONAL = {
    "courriel": "claire.martin@exemple.fr",
    "téléphone": "06 12 34 56 78",
    "NIR": "1 84 12 75 108 342 17",
    "IBAN": "FR76 3000 6000 0112 3456 7890 189",
    "carte": "4970 1012 3456 7893",  # passes the Luhn check, as a real card number does
    "naissance": "14/07/1984",
    "adresse": "12 rue des Lilas",
}
SAID = [
    f"Je suis née le {PERSONAL['naissance']}, combien coûte un passeport ? Mon mail est {PERSONAL['courriel']}",
    f"J'habite au {PERSONAL['adresse']}, horaires de la déchetterie ? Rappelez-moi au {PERSONAL['téléphone']}",
    f"Mon numéro de sécurité sociale est {PERSONAL['NIR']}, où déclarer une naissance ?",
    f"Voici mon IBAN {PERSONAL['IBAN']} et ma carte {PERSONAL['carte']} pour payer la cantine, quel est le tarif ?",
]
SECRET = "e2e-voice-secret"


def _raw_data_in(text: str) -> list[str]:
    squeezed = text.replace(" ", "")
    return [kind for kind, value in PERSONAL.items() if value in text or value.replace(" ", "") in squeezed]


def test_nothing_personal_is_printed_or_stored(real_demo_index, tmp_path):
    data = tmp_path / "data"
    env = {
        "GUICHET_FEEDBACK_DIR": str(data / "feedback"),
        "GUICHET_STAFF_DIR": str(data / "staff"),  # its database holds the feedback: scanned with the rest
        "GUICHET_VALIDATED_ANSWERS_FILE": str(data / "validated-answers.jsonl"),
        "GUICHET_VOICE_WEBHOOK_SECRET": SECRET,
        "GUICHET_RATE_LIMIT_EXEMPT": "127.0.0.1",
    }
    with (
        running_server(real_demo_index, env=env) as (base, printed),
        httpx.Client(base_url=base, timeout=180) as client,
    ):
        web = client.post("/api/v1/turn", json={"text": SAID[0]}).json()
        streamed = client.post("/api/v1/turn/stream", json={"text": SAID[1]})
        phone = client.post(
            "/api/v1/voice/turn",
            json={"session_id": "call-1", "transcript": SAID[2], "confidence": 0.9},
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        vote = {"session_id": web["session_id"], "turn_id": web["turn_id"], "useful": False, "reason": "wrong"}
        feedback = client.post("/api/v1/feedback", json=vote)
    assert streamed.status_code == phone.status_code == 200 and feedback.status_code == 201
    replies = json.dumps(web, ensure_ascii=False) + streamed.text + phone.text

    cases = [{"id": f"pii-{n}", "question": q, "kind": "answer", "category": "pii"} for n, q in enumerate(SAID)]
    dataset = write(tmp_path / "pii.jsonl", "\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n")
    run_dir = data / "eval"
    guichet = [sys.executable, "-m", "guichet.cli"]
    env_eval = {**env, "GUICHET_INDEX_DIR": str(real_demo_index)}
    ran = subprocess.run(
        [*guichet, "eval", "run", "--dataset", str(dataset), "--out", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=os.environ | env_eval,
        timeout=900,
    )
    validated = subprocess.run(
        [*guichet, "eval", "validate", str(run_dir), "--case", "pii-0", "--case", "pii-1", "--by", "accueil"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=os.environ | env_eval,
        timeout=300,
    )
    assert (run_dir / "results.jsonl").exists(), ran.stderr[-2000:]
    stored = sorted(p for p in data.rglob("*") if p.is_file())
    assert (data / "staff" / "guichet.db") in stored and (run_dir / "results.jsonl") in stored
    [vote_kept] = FeedbackStore(state_url("", data / "staff"), 365).records(date.min)
    assert vote_kept["reason"] == "wrong" and vote_kept["question"]  # kept, masked: the scan below reads it
    leaks = {
        "server log": _raw_data_in(printed()),
        "replies": _raw_data_in(replies),
        "eval output": _raw_data_in(ran.stdout + ran.stderr + validated.stdout + validated.stderr),
        **{str(p.relative_to(data)): _raw_data_in(p.read_text(encoding="utf-8", errors="replace")) for p in stored},
    }
    assert {where: kinds for where, kinds in leaks.items() if kinds} == {}
    assert "[courriel]" in (run_dir / "results.jsonl").read_text(encoding="utf-8")
