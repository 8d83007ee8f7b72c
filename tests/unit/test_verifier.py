"""The verifier's trained part on its own: what training saves is what loading merges, the card is checked, and the
training data's pieces (perturbations, registers, sides) behave. The trained verifier itself is measured end to end
(tests/e2e/test_verifier.py) and in its report (docs/verifier.md)."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from bot.engines.verifier import CARD, Card, lora_deltas
from bot.errors import ModelError
from training.pairs import Pair, side, with_sides
from training.perturbations import negated, other_authority, other_case, other_figure
from training.registers import in_some_register, sms
from training.train import add_lora, trained_state


class Tiny(nn.Module):
    """Stands for the network: an ``encoder`` with linear layers LoRA wraps, and the two heads."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.block = nn.Module()
        self.encoder.block.q_proj = nn.Linear(6, 6)
        self.encoder.block.down_proj = nn.Linear(6, 4)
        self.answers = nn.Linear(4, 1)
        self.supports = nn.Linear(4, 3)

    def forward(self, x):
        return self.encoder.block.down_proj(self.encoder.block.q_proj(x))


def test_what_training_saves_is_what_loading_merges():
    torch.manual_seed(0)
    trained = Tiny()
    base = {k: v.clone() for k, v in trained.state_dict().items()}
    add_lora(trained, rank=2, alpha=4.0)
    with torch.no_grad():  # training moved the factors away from their zero start
        for name, param in trained.named_parameters():
            if name.endswith("lora_b"):
                param.normal_()
    x = torch.randn(3, 6)
    expected = trained(x)
    state = trained_state(trained)
    assert all(k.endswith((".lora_a", ".lora_b")) or k.startswith(("answers.", "supports.")) for k in state)
    loaded = Tiny()
    loaded.load_state_dict(base)
    with torch.no_grad():
        params = dict(loaded.named_parameters())
        for name, delta in lora_deltas(state, alpha=4.0, rank=2).items():
            params[name] += delta
    assert torch.allclose(loaded(x), expected, atol=1e-5)


def test_a_missing_card_says_how_to_rebuild_the_verifier(tmp_path):
    with pytest.raises(ModelError, match="make verifier"):
        Card.read(tmp_path)
    (tmp_path / CARD).write_text(
        json.dumps({"base": "b", "base_sha256": "", "layers": 4, "rank": 8, "alpha": 16, "weights_sha256": "x"})
    )
    card = Card.read(tmp_path)
    assert (card.layers, card.rank, card.answers_by()) == (4, 8, "cross_encoder")


def test_perturbations_change_the_one_thing_they_name():
    assert negated("Oui, vous pouvez le faire en ligne.") == "Non, vous pouvez le faire en ligne."
    assert negated("Le formulaire est gratuit.") == "Le formulaire n'est pas gratuit."
    assert negated("Rien à changer") is None
    assert other_figure("Délai : 5 jours.", ["5", "15"]) == "Délai : 15 jours."
    assert other_case("Une carte perdue se remplace.") == "Une carte volée se remplace."
    assert other_authority("Adressez-vous à la mairie.") == "Adressez-vous à la préfecture."


def test_registers_are_chosen_reproducibly_and_keep_the_meaning_readable():
    question = "Combien coûte une carte d'identité perdue ?"
    assert in_some_register(question) == in_some_register(question)
    assert sms(question) == "cb coute une carte d'identite perdue"


def test_a_pair_that_draws_on_both_sides_is_dropped():
    train = next(f"doc{n}.md" for n in range(100) if side(f"doc{n}.md") == "train")
    valid = next(f"doc{n}.md" for n in range(100) if side(f"doc{n}.md") == "valid")
    pairs = [
        Pair("answers", "q", "r", 1, "positive", (train,)),
        Pair("answers", "q", "r", 0, "other_document", (train, valid)),
        Pair("answers", "q", "r", 1, "positive", (valid,)),
    ]
    assert [(p.sources, p.split) for p in with_sides(pairs)] == [((train,), "train"), ((valid,), "valid")]


def test_the_embedder_answers_through_its_calibration_and_keeps_few_vectors():
    from bot.engines.embedder import FakeEmbedder
    from bot.engines.verifier import EmbedderVerifier, FakeVerifier

    supports_by = FakeVerifier()
    verifier = EmbedderVerifier(FakeEmbedder(), (10.0, -5.0), supports_by, cache_size=2)
    price, hours = "Passeport | Prix du passeport : 86 €", "Mairie | Horaires : 9 h"
    answers, other = verifier.answers("prix du passeport", [price, hours])
    assert answers > 0.5 > other
    cos = verifier.cosines("prix du passeport", [price])[0]
    assert answers == pytest.approx(1 / (1 + np.exp(-(10 * cos - 5))), rel=1e-5)
    verifier.answers("q", ["a b", "c d", "e f"])
    assert list(verifier.cache) == ["c d", "e f"]  # the oldest dropped
    assert verifier.supports([("s", "r")]).tolist() == supports_by.supports([("s", "r")]).tolist()


def test_the_calibration_is_fitted_on_the_training_side_only():
    from bot.engines.embedder import FakeEmbedder
    from training.calibration import fit_calibration
    from training.pairs import Vectors

    def pair(question, reading, label, split):
        return Pair(
            "answers", question, reading, label, "positive" if label else "same_passage", ("a.md",), split=split
        )

    train = [
        pair("prix du passeport", "Prix du passeport : 86 €", 1, "train"),
        pair("prix du passeport", "Horaires", 0, "train"),
    ]
    a, _ = fit_calibration(Vectors(FakeEmbedder()), train * 5)
    assert a > 0  # a closer sentence is more likely to answer
    with pytest.raises(ValueError, match="train"):
        fit_calibration(Vectors(FakeEmbedder()), [pair("q", "r", 1, "valid"), pair("q", "s", 0, "valid")])


def test_a_training_question_close_to_an_evaluation_question_is_not_trained_on():
    from bot.engines.embedder import FakeEmbedder
    from training.pairs import Vectors, without_leaks

    pairs = [
        Pair("answers", "horaires de la mairie le mercredi", "Mairie | Mercredi : 9 h", 1, "positive", ("m.md",)),
        Pair("answers", "prix du passeport", "Passeport | 86 €", 1, "positive", ("p.md",)),
        Pair("supports", "horaires de la mairie le mercredi", "Mairie | Mercredi : 9 h", 0, "entailed", ("m.md",)),
    ]
    kept, leaked = without_leaks(pairs, Vectors(FakeEmbedder()), ["Horaires de la mairie le mercredi ?"])
    assert leaked == 1 and kept == pairs[1:]  # a statement is no question: kept
