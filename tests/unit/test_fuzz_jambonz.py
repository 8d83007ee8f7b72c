"""Property-based fuzzing of the jambonz webhooks: signed payloads of any shape a gateway (or a broken one) could
send. The OpenAPI fuzzer cannot reach them (their body is read raw, then checked against its signature), so the
payloads are generated here: a caller is never hung up on by a server error, whatever arrives.
"""

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.phone import jambonz
from bot.settings import Settings
from bot.web.app import create_app
from tests.conftest import fake_answerer
from tests.unit.test_api import settled
from tests.unit.test_fuzz_api import REPLY, UNLIMITED

SECRET = "fuzz-secret"
VERBS = {"gather", "say", "dial", "hangup", "config"}
PATHS = ("/voice/jambonz/call", "/voice/jambonz/gather", "/voice/jambonz/status")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40), st.just("")
)
anything = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
alternative = st.fixed_dictionaries(
    {}, optional={"transcript": st.one_of(st.text(max_size=60), anything), "confidence": anything}
)
speech = st.one_of(
    anything,
    st.fixed_dictionaries({}, optional={"is_final": anything, "alternatives": st.lists(alternative, max_size=2)}),
    st.fixed_dictionaries({"transcripts": st.lists(st.fixed_dictionaries({"alternatives": st.lists(alternative)}))}),
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "call_sid": st.one_of(st.sampled_from(["c-1", "c-2"]), anything),
        "reason": st.one_of(st.sampled_from(["speechDetected", "dtmfDetected", "timeout"]), anything),
        "speech": speech,
        "digits": st.one_of(st.sampled_from(["0", "1", "2", "9", "12", "*", "#"]), anything),
        "call_status": st.one_of(st.sampled_from(["ringing", "completed", "failed"]), anything),
        "from": anything,
    },
)
bodies = st.one_of(payloads, anything)  # the top level may not even be an object


@pytest.fixture(scope="module")
def client(fake_demo_index, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz-jambonz")
    answerer = fake_answerer(fake_demo_index, REPLY, workdir)
    settings_ = Settings(voice_webhook_secret=SECRET, feedback_dir=workdir / "feedback", **UNLIMITED)
    with TestClient(create_app(lambda: answerer, settings_)) as client:
        settled(client)
        yield client


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(path=st.sampled_from(PATHS), body=bodies)
def test_any_signed_payload_gets_verbs_never_a_server_error(client, path, body):
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(raw, SECRET)}
    response = client.post(path, content=raw, headers=headers)
    assert response.status_code < 500, (path, body, response.text)
    if path != "/voice/jambonz/status" and response.status_code == 200:
        verbs = response.json()
        assert isinstance(verbs, list) and verbs and {v["verb"] for v in verbs} <= VERBS, verbs


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(raw=st.binary(max_size=200))
def test_a_signed_body_that_is_not_json_is_refused_cleanly(client, raw):
    headers = {"Content-Type": "application/json", "Jambonz-Signature": jambonz.sign(raw, SECRET)}
    response = client.post("/voice/jambonz/gather", content=raw, headers=headers)
    assert response.status_code < 500
