"""What residents ask that no document answers: kept masked, for the turns that ended without an answer only, and
grouped by meaning."""

import datetime as dt

import numpy as np

from bot.answer.outcomes import Outcome
from bot.answer.turn import Passage, Turn
from bot.engines.embedder import FakeEmbedder
from bot.web.gaps import GapStore
from bot.web.staff.gap_report import QuestionVectors, gap_overview, groups_by_meaning


def _turn(question: str, outcome: Outcome) -> Turn:
    passage = Passage("S1", "a.md#0", "Piscine", "a.md", "", "", [], "texte", 0.5, 0.0)
    return Turn(question=question, outcome=outcome, passages=[passage, passage])


def test_only_turns_the_documents_did_not_answer_are_kept_with_their_closest_documents(tmp_path):
    store = GapStore(tmp_path, 90, today=lambda: dt.date(2026, 11, 23))
    assert store.add("web", _turn("prix du passeport", Outcome.ANSWERED)) is None
    assert store.add("web", _turn("météo", Outcome.REFUSED_OUT_OF_SCOPE)) is None
    record = store.add("voice", _turn("horaires de la piscine", Outcome.UNANSWERABLE_NO_SOURCES))
    assert record == {
        "day": "2026-11-23",
        "channel": "voice",
        "outcome": "unanswerable_no_sources",
        "question": "horaires de la piscine",
        "documents": [{"source": "a.md", "title": "Piscine"}],
    }
    store.add("web", _turn("piscine le dimanche ?", Outcome.ANSWERED_FROM_QUOTE))
    assert [r["question"] for r in store.records(dt.date(2026, 11, 1))] == [
        "horaires de la piscine",
        "piscine le dimanche ?",
    ]
    later = GapStore(tmp_path, 90, today=lambda: dt.date(2027, 3, 1))
    assert [p.name for p in later.purge()] == ["lacunes-2026-11.jsonl"]


def test_groups_are_cut_at_a_distance_not_at_a_number_of_groups():
    vectors = np.array([[1.0, 0.0, 0.0], [0.98, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert groups_by_meaning(vectors, 0.1) == [[0, 1], [2], [3]]
    assert len(groups_by_meaning(vectors, 2.0)) == 1
    assert groups_by_meaning(vectors[:1], 0.1) == [[0]] and groups_by_meaning(vectors[:0], 0.1) == []


def test_the_overview_counts_each_group_by_week_with_its_examples_and_documents():
    today = dt.date(2026, 11, 25)  # a Wednesday
    records = [
        {"day": "2026-11-24", "question": "horaires piscine municipale", "documents": [{"title": "Piscine"}]},
        {"day": "2026-11-10", "question": "horaires piscine municipale dimanche", "documents": [{"title": "Piscine"}]},
        {"day": "2026-11-24", "question": "tarif cantine scolaire", "outcome": "answered_from_quote"},
        {"day": "2026-11-24", "question": "  "},
    ]
    gaps = gap_overview(records, QuestionVectors(FakeEmbedder()), 0.6, weeks=4, today=today)
    assert [g.count for g in gaps] == [2, 1]
    pool, canteen = gaps
    assert pool.weeks == [0, 1, 0, 1] and pool.documents == [("Piscine", 2)]
    assert set(pool.examples) == {"horaires piscine municipale", "horaires piscine municipale dimanche"}
    assert canteen.label == "tarif cantine scolaire" and canteen.outcomes == {"answered_from_quote": 1}
