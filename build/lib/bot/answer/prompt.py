"""Versioned prompts rendered strictly: a missing variable is an error, not an empty string."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, TemplateError

from bot.errors import ConfigError
from bot.settings import load_yaml


class Prompt:
    """A prompt file (``version``, ``system``, ``user``) turned into chat messages.

    >>> p = Prompt({"version": "t1", "system": "Sois bref.", "user": "Q : {{ question }}"})
    >>> p.messages(question="Horaires ?")[1]["content"]
    'Q : Horaires ?'
    """

    def __init__(self, data: dict[str, Any]):
        env = Environment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False)
        try:
            self.version = str(data["version"])
            self.system = data["system"].strip()
            self.user = env.from_string(data["user"])
        except (KeyError, TemplateError) as exc:
            raise ConfigError(f"Prompt is missing or breaks {exc}; it needs version, system and user.") from None

    @classmethod
    def load(cls, path: Path) -> Prompt:
        return cls(load_yaml(path))

    def messages(self, **variables: Any) -> list[dict[str, Any]]:
        try:
            user = self.user.render(**variables).strip()
        except TemplateError as exc:
            raise ConfigError(f"Prompt {self.version} could not be rendered: {exc}") from None
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
