import pytest

from bot.answer.outcomes import Messages, Outcome
from bot.errors import ConfigError
from bot.settings import Settings, load_settings


def test_bad_value_names_the_key(monkeypatch):
    monkeypatch.setenv("GUICHET_LLM_CONTEXT", "beaucoup")
    with pytest.raises(ConfigError, match="Config 'GUICHET_LLM_CONTEXT' has value 'beaucoup'"):
        load_settings()


def test_every_outcome_has_a_french_message():
    settings = Settings()
    from bot.settings import load_yaml

    messages = Messages.load(settings.messages_file, load_yaml(settings.town_file))
    for outcome in Outcome:
        messages.for_outcome(outcome)  # every placeholder is defined by the town file
    assert "01 99 00 12 34" in messages.for_outcome(Outcome.UNANSWERABLE_NO_SOURCES)


def test_message_with_unknown_placeholder_is_a_config_error():
    with pytest.raises(ConfigError, match="town file"):
        Messages({"answered": "{maire}"}, {}).for_outcome(Outcome.ANSWERED)
