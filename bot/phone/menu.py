"""The keypad menu a caller is offered when speech fails twice: the town's most asked topics, then each topic's
most asked questions read one by one, or a person.

The town lists them in ``config/town.yaml`` (``voice.menu``): its reception knows what callers ask most. A topic
is chosen by its digit (1 to 8), a question is heard with 1 and skipped with 2, 9 goes back to the topics and 0
asks for a person everywhere. Digits only: the recognizer that failed twice is not asked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError

MAX_TOPICS = 8  # digits 1 to 8; 9 is "back to the topics", 0 "a person"
WHERE = "config/town.yaml, voice.menu"


@dataclass(frozen=True)
class MenuTopic:
    name: str  # as it is said: "les cartes d'identité et les passeports"
    questions: tuple[str, ...]  # asked through the answer path when the caller chooses one


@dataclass(frozen=True)
class Menu:
    topics: tuple[MenuTopic, ...]

    @classmethod
    def from_town(cls, voice: dict[str, Any]) -> Menu | None:
        """The menu of ``voice.menu``, or None when the town lists none (the keypad then offers only a person).

        >>> Menu.from_town({"menu": [{"topic": "l'état civil", "questions": ["Comment obtenir un acte ?"]}]})
        Menu(topics=(MenuTopic(name="l'état civil", questions=('Comment obtenir un acte ?',)),))
        """
        listed = voice.get("menu")
        if listed is None:
            return None
        if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_TOPICS:
            raise ConfigError(f"{WHERE}: expected a list of 1 to {MAX_TOPICS} topics, each with its questions.")
        topics = []
        for n, entry in enumerate(listed, 1):
            name = entry.get("topic") if isinstance(entry, dict) else None
            questions = entry.get("questions") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"{WHERE}, topic {n}: 'topic' must be the topic's name as it is said.")
            if (
                not isinstance(questions, list)
                or not questions
                or not all(isinstance(q, str) and q.strip() for q in questions)
            ):
                raise ConfigError(f"{WHERE}, topic {n} ({name}): 'questions' must list at least one question.")
            topics.append(MenuTopic(name.strip(), tuple(q.strip() for q in questions)))
        return cls(tuple(topics))

    def topic(self, digit: str) -> MenuTopic | None:
        """The topic of a keypad digit, or None."""
        if len(digit) == 1 and digit.isdigit() and 1 <= int(digit) <= len(self.topics):
            return self.topics[int(digit) - 1]
        return None
