"""Property-based fuzzing of the whole HTTP surface, generated from the service's own OpenAPI schema.

Every operation gets requests that fit the schema and requests that break it (schemathesis's strategies, run by
Hypothesis): no answer may be a 5xx, and a resident's endpoint answers any 4xx with a French ``error`` message,
never FastAPI's English detail.
"""

import json
import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from bot.settings import Settings
from bot.web import service as service_module
from bot.web.app import create_app
from tests.conftest import fake_answerer
from tests.unit.test_listening import FakeRecognizer
from tests.unit.test_speech import ToneSynthesizer

RESIDENTS = ("/api/v1/turn", "/api/v1/turn/stream", "/api/v1/feedback", "/api/v1/voice/turn", "/speech/tts")
FRENCH = re.compile(
    r"\b(votre|merci|requête|message|question|avis|service|canal|passerelle|réessayer|adresse|méthode|synthèse)\b",
    re.I,
)
SECRET = "fuzz-secret"
EXAMPLES = 40  # per operation and generation mode
REPLY = json.dumps({"source": "S1", "reponse": "Le passeport d'un majeur coûte 86 €."})
UNLIMITED = {"rate_limit_per_minute": 1e6, "rate_limit_burst": 1_000_000, "max_turns_in_progress": 100}


class SteadyTone(ToneSynthesizer):
    fails_on = None  # an engine failure is a deliberate 500; the fuzzer looks for the others


@pytest.fixture(scope="module")
def api(fake_demo_index, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    answerer = fake_answerer(fake_demo_index, REPLY, workdir)
    secrets = {"voice_webhook_secret": SECRET, "speech_api_key": SECRET}
    settings_ = Settings(feedback_dir=workdir / "feedback", **secrets, **UNLIMITED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service_module, "EspeakSynthesizer", SteadyTone)
        patch.setattr(service_module, "WhisperRecognizer", FakeRecognizer)  # engines are faked here, as above
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(lambda: answerer, settings_))


def _operations(api):
    return {op.label: op for op in (result.ok() for result in api.get_all_operations())}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error_and_residents_read_french(api, mode):
    statuses: Counter = Counter()
    operations = _operations(api)
    assert {"POST /api/v1/turn", "POST /api/v1/feedback", "POST /api/v1/voice/turn", "POST /speech/tts"} <= set(
        operations
    )
    for operation in operations.values():

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def one_request(case):
            response = case.call(headers={"Authorization": f"Bearer {SECRET}"})
            statuses[response.status_code // 100 * 100] += 1
            case.validate_response(response, checks=[not_a_server_error])
            if case.path in RESIDENTS and 400 <= response.status_code < 500:
                body = response.json()
                assert set(body) == {"error"} and FRENCH.search(body["error"]), (case.path, body)

        try:
            one_request()
        except Unsatisfiable:  # an operation with no parameter and no body has nothing to break
            assert mode is GenerationMode.NEGATIVE
    assert statuses[500] == 0 and sum(statuses.values()) >= EXAMPLES, statuses
    print(f"{mode}: {sum(statuses.values())} requests over {len(operations)} operations, by status class {statuses}")
