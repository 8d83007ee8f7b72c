"""Retrieval alone (tools/retrieval.py): the expected document's rank for each answerable case, as totals."""

import json

from bot.answer.steps.passage_retriever import PassageRetriever
from tests.conftest import fake_answerer, write
from tools.retrieval import ranks, summary


def test_each_answerable_case_with_a_source_gets_its_documents_rank(fake_demo_index, tmp_path):
    cases = [
        {"id": "a", "question": "Combien coûte un passeport ?", "kind": "answer", "must_include": ["86 €"],
         "source": "carte-identite-passeport.html"},
        {"id": "b", "question": "Horaires de la déchetterie ?", "kind": "answer", "must_include": ["9 h"],
         "source": "nowhere.md"},
        {"id": "c", "question": "Zorglub quinquagénaire ?", "kind": "answer", "must_include": ["x"],
         "source": "nowhere.md"},  # below the no-source gate: the ranking is still read
        {"id": "d", "question": "Quel temps demain ?", "kind": "refuse", "outcome": ["refused_out_of_scope"]},
    ]  # fmt: skip
    dataset = write(tmp_path / "set.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases))
    retriever = fake_answerer(fake_demo_index, "{}", tmp_path).step(PassageRetriever)
    found = ranks(retriever, dataset)
    assert len(found) == 3 and found[0] >= 1 and found[1:] == [0, 0]  # a source no ranking holds counts as missed
    assert summary(found)["cases"] == 3 and summary(found)["hit@10"] == (1 if found[0] <= 10 else 0)
    assert summary([1, 2, 0, 3]) == {"cases": 4, "hit@1": 1, "hit@2": 2, "hit@10": 3, "mrr": 0.4583}
