"""The phone channel, gateway-agnostic: a caller's transcript in, something a receptionist would say out.

``VoiceDialog.handle`` runs the same answer pipeline as the web, then ``speakable`` renders the reply for the
ear (short, no URL, figures written so a synthesizer reads them right) and decides whether to continue, ask
again, hand over to a person or end the call. Sessions are keyed on the call id only: the caller's number is
personal data and is never stored or logged.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.answer.outcomes import ANSWERS, Messages, Outcome
from bot.answer.pipeline import Answerer
from bot.answer.turn import Turn
from bot.language.words import MASKED
from bot.language.yes_no import spoken_yes_or_no
from bot.phone.menu import Menu, MenuTopic, Sections, by_digit, with_digits
from bot.phone.topics import Topics
from bot.text import EMAIL, fold

MIN_CONFIDENCE = 0.5
MAX_SPOKEN_SENTENCES = 2  # then "Voulez-vous plus de détails ?"
MAX_SPOKEN_WORDS = 40
MAX_CALLS = 1000  # calls remembered at once; beyond, the least recently heard is forgotten
# A caller asking for a person: a wish to speak or be put through, followed by someone to speak to, or a reply
# that is nothing but that someone ("un conseiller, s'il vous plaît"). A question that only mentions an agent
# ("le salaire d'un agent", "joue le rôle d'un agent") is a question.
_SOMEONE = (
    r"(quelqu'un|une? (vraie? )?(agent|personne|conseill\w+|humain|operat\w+|standardiste|secretaire)|le standard"
    r"|l'accueil)"
)
ASKS_FOR_A_PERSON = re.compile(
    r"\b(parler|passer|passez|joindre|avoir|mettre en relation|transferer|transferez)\b(\W?moi)?\W+(a |avec )?"
    + _SOMEONE
    + r"|^\W*(je (veux|voudrais|souhaite|souhaiterais) )?"
    + _SOMEONE
    + r"\W*(s'il (vous|te) plait|svp)?\W*$"
)
MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]
HANDOFF_OUTCOMES = {Outcome.HANDOFF_INDIVIDUAL_DECISION}
NO_ANSWER_OUTCOMES = {Outcome.UNANSWERABLE_NO_SOURCES, Outcome.ERROR_LLM}


@dataclass
class VoiceReply:
    """What the gateway must do next; ``action`` is continue, repeat, handoff or end."""

    speech_text: str
    display_text: str
    action: str
    handoff_target: str | None = None


@dataclass
class CallState:
    """Per-call counters, keyed on the call id; nothing about the caller."""

    misheard: int = 0
    unanswered: int = 0
    last_speech: str = ""
    unsure: tuple[str, str] | None = None  # (what was heard, the topic asked about) while a yes is awaited
    more: str = ""  # the rest of the last answer, said if the caller wants more details
    menu: str = ""  # "topics" or "choices" while the caller chooses with the keypad (``Menu``)
    topic: MenuTopic | None = None  # the topic whose choices are said, and which page of them
    page: int = 0
    history: list[dict] = field(default_factory=list)  # earlier questions of the call, for follow-ups
    touched: float = field(default_factory=time.monotonic)


def speakable(text: str) -> str:
    """Text a French synthesizer reads right: no markdown or URL, euros, hours, dates and phone numbers spelt.

    >>> speakable("Le passeport coûte 86 € ; ouvert de 9 h 30 à 12 h, le 03/04/2026. Voir https://x.fr/a.")
    'Le passeport coûte 86 euros ; ouvert de 9 heures 30 à 12 heures, le 3 avril 2026. Voir sur le site indiqué.'
    """
    text = re.sub(r"https?://(www\.)?service-public\.fr\S*", "sur service-public.fr", text)
    text = re.sub(r"(https?://|www\.)\S+?(?=[.,;]?(\s|$))", "sur le site indiqué", text)
    text = EMAIL.sub(lambda m: _spelt_address(m.group()), text)
    text = re.sub(r"[*_`#>|]+", "", text)
    text = re.sub(r"(?m)^\s*[-•]\s*", "", text)  # a list's bullets are not read out
    text = MASKED.sub("", text)  # masked data placeholders
    text = re.sub(r"(\d)\s*€", r"\1 euros", text)
    text = re.sub(r"(\d),(\d{2}) euros", r"\1 euros \2", text)
    text = re.sub(r"\b(\d{1,2})\s*h\s*(\d{2})\b", r"\1 heures \2", text)
    text = re.sub(r"\b(\d{1,2})\s*h\b", r"\1 heures", text)
    text = re.sub(
        r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b",
        lambda m: f"{int(m[1])} {MONTHS[int(m[2]) - 1]} {m[3]}" if 1 <= int(m[2]) <= 12 else m[0],
        text,
    )
    text = re.sub(r"\b0(\d)[ .]?(\d{2})[ .]?(\d{2})[ .]?(\d{2})[ .]?(\d{2})\b", r"0\1, \2, \3, \4, \5", text)
    text = text.replace("m²", " mètres carrés").replace("«", "").replace("»", "")
    return re.sub(r"\s+", " ", text).strip()


def _spelt_address(address: str) -> str:
    """An e-mail address as a synthesizer should read it: "arobase", "point", "tiret"."""
    return " arobase ".join(address.split("@", 1)).replace(".", " point ").replace("-", " tiret ")


def first_sentences(text: str, count: int = MAX_SPOKEN_SENTENCES, max_words: int = MAX_SPOKEN_WORDS) -> str:
    """The first ``count`` sentences, fewer if they run past ``max_words``: a caller cannot skim.

    >>> first_sentences("Un. Deux trois. Quatre cinq six.", max_words=3)
    'Un. Deux trois.'
    """
    parts = re.split(r"(?<=[.!?])\s+", text.strip())[:count]
    while len(parts) > 1 and len(" ".join(parts).split()) > max_words:
        parts.pop()
    return " ".join(parts)


def source_in_words(turn: Turn) -> str:
    """Name the source for the ear: the document's title and where it comes from, never its URL."""
    if not turn.citations:
        return ""
    citation = turn.citations[0]
    where = "service-public.fr" if "service-public.fr" in citation.url else "les documents de la mairie"
    return f"Source : {citation.title}, sur {where}."


def spoken_answer(turn: Turn) -> str:
    """What a caller hears of an answer: its first sentences, the age of its sources when they are old (said even
    when the answer is cut short), and the source named in words."""
    said = turn.answer.removesuffix(turn.dated).strip() if turn.dated else turn.answer
    parts = (first_sentences(said), turn.dated, source_in_words(turn))
    return " ".join(speakable(p) for p in parts if p)


def more_details(turn: Turn) -> str:
    """What ``spoken_answer`` left out of the answer, for a caller who asks for more ("" if nothing).

    >>> more_details(Turn(question="q", answer="Un. Deux. Trois, quatre."))
    'Trois, quatre.'
    """
    said = turn.answer.removesuffix(turn.dated).strip() if turn.dated else turn.answer
    first = first_sentences(said)
    return speakable(said[len(first) :].strip()) if said.startswith(first) else ""


def yes_or_no_of(heard: str, dtmf: str) -> str:
    """A caller's answer to a yes/no question: 1 or "oui", 2 or "non" ("oui", "non"), else ""."""
    if dtmf:
        return {"1": "oui", "2": "non"}.get(dtmf, "")
    return spoken_yes_or_no(heard)


class VoiceDialog:
    """Turns a caller's transcript (or keypad digits) into the next thing to say and do."""

    def __init__(
        self,
        answerer: Answerer,
        messages: Messages,
        voice_settings: dict,
        clock=None,
        max_calls: int = MAX_CALLS,
        on_turn: Callable[[Turn, str], None] | None = None,
        ttl_seconds: int = 1800,
        history_turns: int = 6,
        topics: Topics | None = None,
        sections: Sections | None = None,
    ):
        self.answerer, self.messages, self.max_calls = answerer, messages, max_calls
        self.topics = topics  # what a badly heard caller may be calling about (None: just ask again)
        # A call is forgotten after ``ttl_seconds`` without a word, and keeps ``history_turns`` earlier questions
        # for follow-ups: the web sessions' settings (GUICHET_SESSION_TTL_SECONDS, GUICHET_SESSION_MAX_TURNS).
        self.ttl_seconds, self.history_turns = ttl_seconds, history_turns
        self.on_turn = on_turn  # told of every answered turn with its channel (the service's metrics)
        # offered after two misses, over the indexed documents' sections (None: only a person, by 0)
        self.menu = Menu.from_town(voice_settings, sections or {})
        self.transfer_to = str(voice_settings.get("transfer_to", ""))
        self.hours_spoken = str(voice_settings.get("opening_hours_spoken", ""))
        self.opening_hours = {int(k): v for k, v in (voice_settings.get("opening_hours") or {}).items()}
        self.clock = clock or (lambda: datetime.now(ZoneInfo("Europe/Paris")))
        # Turns of different calls run in worker threads at once: the table of calls changes under a lock.
        self.calls: OrderedDict[str, CallState] = OrderedDict()
        self._calls_lock = threading.Lock()

    def fixed_phrases(self) -> list[str]:
        """What this dialog says word for word on many calls (a speech vendor may keep their audio)."""
        keys = ("voice_welcome", "voice_repeat", "voice_keypad", "voice_wait", "voice_transfer", "voice_goodbye")
        phrases = [self.messages.text(k) for k in keys] + [self.messages.text("voice_closed", hours=self.hours_spoken)]
        return phrases + ([self._menu_text()] if self.menu else [])

    def welcome(self, call_id: str) -> VoiceReply:
        self._state(call_id)
        text = self.messages.text("voice_welcome")
        return VoiceReply(speech_text=text, display_text=text, action="continue")

    def handle(self, call_id: str, transcript: str = "", confidence: float | None = None, dtmf: str = "") -> VoiceReply:
        state = self._state(call_id)
        heard = transcript.strip()
        if state.more:  # the caller was asked whether they want more details
            details, state.more = state.more, ""
            wants = yes_or_no_of(heard, dtmf)
            if wants:
                said = details if wants == "oui" else ""
                text = " ".join(s for s in (said, self.messages.text("voice_anything_else")) if s)
                state.last_speech = text
                return VoiceReply(speech_text=text, display_text=text, action="continue")
        if state.unsure:  # the caller was asked whether they call about a topic
            topic = state.unsure[1]
            confirmed = self._confirmed(state, heard, dtmf)
            if confirmed is not None:
                return self._answer(state, confirmed, topic)
        if dtmf and state.menu:
            return self._menu_choice(state, dtmf)
        state.menu = ""  # a caller who speaks again leaves the keypad menu
        if dtmf:
            return self._keypad(state, dtmf)
        if not heard or (confidence is not None and confidence < MIN_CONFIDENCE):
            state.misheard += 1
            topic = self.topics.closest(heard) if self.topics and heard else None
            if topic:
                state.unsure = (heard, topic)
                text = self.messages.text("voice_confirm_topic", topic=topic)
                return VoiceReply(speech_text=speakable(text), display_text=text, action="repeat")
            return self._ask_again(state)
        return self._answer(state, heard)

    def _ask_again(self, state: CallState) -> VoiceReply:
        """Not understood: asked to repeat the first time, then offered the keypad menu (or only a person when the
        town lists no menu)."""
        if state.misheard > 1 and self.menu:
            return self._topics(state, self.messages.text("voice_menu_lead"))
        text = self.messages.text("voice_repeat" if state.misheard <= 1 else "voice_keypad")
        return VoiceReply(speech_text=text, display_text=text, action="repeat")

    def _menu_text(self) -> str:
        choices = with_digits(t.name for t in (self.menu.topics if self.menu else ()))
        return self.messages.text("voice_menu", choices=choices)  # "Pour parler à quelqu'un, tapez 0." ends it

    def _topics(self, state: CallState, lead: str = "") -> VoiceReply:
        """The topics, each with its digit, and 0 for a person."""
        state.menu, state.topic = "topics", None
        return self._prompt(lead, self._menu_text())

    def _choices(self, state: CallState, lead: str = "") -> VoiceReply:
        """The chosen topic's choices on ``state.page``, each with its digit; 9 for more (or back), 0 a person."""
        assert state.topic is not None
        choices = with_digits(c.said for c in state.topic.page(state.page))
        then = "voice_menu_more" if state.topic.has_page(state.page + 1) else "voice_menu_back"
        text = self.messages.text("voice_menu_choices", topic=state.topic.name, choices=choices)
        return self._prompt(lead, text, self.messages.text(then), self.messages.text("voice_menu_person"))

    @staticmethod
    def _prompt(*parts: str) -> VoiceReply:
        text = " ".join(p for p in parts if p)
        return VoiceReply(speech_text=speakable(text), display_text=text, action="repeat")

    def _menu_choice(self, state: CallState, dtmf: str) -> VoiceReply:
        """A digit pressed in the keypad menu: 0 a person everywhere; a topic's digit says its choices; a choice's
        digit asks it through the answer path; 9 says the next choices, or the topics again after the last."""
        digit = dtmf[0]
        unknown = self.messages.text("voice_menu_unknown")
        if digit == "0":
            state.menu = ""
            return self.handoff()
        if state.menu == "topics":
            topic = self.menu.topic(digit) if self.menu else None
            if topic is None:
                return self._topics(state, unknown)
            state.menu, state.topic, state.page = "choices", topic, 0
            return self._choices(state)
        assert state.topic is not None
        if digit == "9":
            if not state.topic.has_page(state.page + 1):
                return self._topics(state)
            state.page += 1
            return self._choices(state)
        choice = by_digit(state.topic.page(state.page), digit)
        if choice is None:
            return self._choices(state, unknown)
        state.menu = ""
        return self._answer(state, choice.asked)

    def _confirmed(self, state: CallState, heard: str, dtmf: str) -> str | None:
        """After "Vous appelez au sujet de … ?": yes (or 1) gives the question to answer, what was heard read with
        its topic; no (or 2) asks again; anything else is a new question (None)."""
        (before, topic), state.unsure = state.unsure or ("", ""), None
        reply = yes_or_no_of(heard, dtmf)
        if reply == "oui":
            return f"{before} ({topic})" if before else topic
        if reply == "non":
            return ""
        return None

    def _answer(self, state: CallState, heard: str, topic: str = "") -> VoiceReply:
        """Answer ``heard``; ``topic`` is the one the caller confirmed, whose keypad choices they are offered when
        what was heard finds no answer."""
        if not heard:  # the topic was wrong
            return self._ask_again(state)
        state.misheard = 0
        if ASKS_FOR_A_PERSON.search(fold(heard)):
            return self.handoff()
        turn = self.answerer.answer(heard, state.history, channel="voice")
        if self.on_turn:
            self.on_turn(turn, "voice")
        state.history = [*state.history, {"question": turn.question, "outcome": turn.outcome}][-self.history_turns :]
        if turn.outcome in HANDOFF_OUTCOMES:
            return self.handoff(prefix=turn.answer)
        covering = self.menu.covering(topic) if self.menu and topic else None
        if turn.outcome in NO_ANSWER_OUTCOMES and covering:  # the topic is known: its choices, by keypad
            state.menu, state.topic, state.page = "choices", covering, 0
            return self._choices(state, self.messages.text("voice_menu_topic_known"))
        if turn.outcome in NO_ANSWER_OUTCOMES:
            state.unanswered += 1
            if state.unanswered >= 2:
                return self.handoff(prefix=first_sentences(turn.answer, 1))
        else:
            state.unanswered = 0
        state.more = more_details(turn) if turn.outcome in ANSWERS else ""
        then = self.messages.text("voice_more_details" if state.more else "voice_anything_else")
        spoken = " ".join(s for s in (spoken_answer(turn), then) if s)
        state.last_speech = spoken
        action = "end" if turn.outcome is Outcome.HANDOFF_EMERGENCY else "continue"
        return VoiceReply(speech_text=spoken, display_text=turn.answer, action=action)

    def handoff(self, prefix: str = "") -> VoiceReply:
        """Transfer during opening hours; otherwise give the hours and end politely.

        Only the first sentence of ``prefix`` is kept: the rest of a written message (whom to contact) is what
        the transfer or the opening hours already say.
        """
        prefix = first_sentences(prefix, 1)
        if self.is_open() and self.transfer_to:
            text = " ".join(s for s in (speakable(prefix), self.messages.text("voice_transfer")) if s)
            return VoiceReply(speech_text=text, display_text=text, action="handoff", handoff_target=self.transfer_to)
        text = " ".join(
            s for s in (speakable(prefix), self.messages.text("voice_closed", hours=self.hours_spoken)) if s
        )
        return VoiceReply(speech_text=text, display_text=text, action="end")

    def is_open(self) -> bool:
        now = self.clock()
        for span in self.opening_hours.get(now.isoweekday(), []):
            start, end = span.split("-")
            if start <= now.strftime("%H:%M") < end:
                return True
        return False

    def end(self, call_id: str) -> None:
        with self._calls_lock:
            self.calls.pop(call_id, None)

    def _keypad(self, state: CallState, dtmf: str) -> VoiceReply:
        if dtmf.startswith("0"):
            return self.handoff()
        if dtmf.startswith("1") and state.last_speech:
            return VoiceReply(speech_text=state.last_speech, display_text=state.last_speech, action="continue")
        text = self.messages.text("voice_repeat")
        return VoiceReply(speech_text=text, display_text=text, action="repeat")

    def _state(self, call_id: str) -> CallState:
        """The call's state, most recently heard last; expired and surplus calls are forgotten (never on disk)."""
        now = time.monotonic()
        with self._calls_lock:
            state = self.calls.pop(call_id, None) or CallState()
            state.touched = now
            self.calls[call_id] = state
            while self.calls:
                oldest_id, oldest = next(iter(self.calls.items()))
                if now - oldest.touched <= self.ttl_seconds and len(self.calls) <= self.max_calls:
                    break
                del self.calls[oldest_id]
            return state
