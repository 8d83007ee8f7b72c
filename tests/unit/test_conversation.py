"""Follow-up detection, the streamed draft and the rate limiter, one small piece at a time."""

import pytest

from bot.answer.steps.follow_up import is_follow_up
from bot.answer.streaming import DraftStream, partial_json_string, releasable
from bot.web.limits import RateLimiter


@pytest.mark.parametrize(
    "question",
    [
        "Et pour un mineur ?",
        "combien ça coûte",
        "Quels documents ?",
        "Dans ce cas, il faut aller où ?",
        "et si je suis à l'étranger ?",
    ],
)
def test_follow_ups_are_recognised(question):
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "Comment faire une carte d'identité pour mon fils de 12 ans ?",
        "Quels sont les horaires de la déchetterie le samedi ?",
        "Pour inscrire mon enfant à l'école, quelles pièces faut-il fournir ?",
    ],
)
def test_standalone_questions_are_left_alone(question):
    assert not is_follow_up(question)


def test_the_answer_is_read_out_of_partial_json():
    assert partial_json_string('{"source": "S1", "reponse": "Il faut \\"venir', "reponse") == 'Il faut "venir'
    assert partial_json_string('{"source": "S1", "reponse": "fini", "x": 1}', "reponse") == "fini"
    assert partial_json_string('{"source": "S1"', "reponse") == ""


def test_sentences_with_figures_or_contacts_are_held_back():
    assert releasable("Venez en mairie. Appelez le 01 99") == "Venez en mairie."
    assert releasable("Écrivez à accueil@") == ""
    assert releasable("Le tarif est fixé") == "Le tarif est"
    assert releasable("Oui. C'est gratuit.") == "Oui. C'est gratuit."


def test_the_draft_stream_sends_each_released_piece_once():
    sent = []
    stream = DraftStream(sent.append)
    raw = '{"source": "S1", "reponse": "Il faut venir en mairie. Le prix est de 86 €."}'
    for end in range(1, len(raw) + 1):
        stream(raw[:end])
    assert "".join(sent) == "Il faut venir en mairie. Le prix est de"
    assert all(piece.strip() for piece in sent)


def test_the_rate_limiter_refills_over_time():
    now = [0.0]
    limiter = RateLimiter(per_minute=6, burst=2, clock=lambda: now[0])
    assert [limiter.wait_seconds("a") for _ in range(3)] == [0.0, 0.0, 10.0]
    assert limiter.wait_seconds("b") == 0.0  # clients are counted apart
    now[0] = 10.0
    assert limiter.wait_seconds("a") == 0.0


def test_model_calls_are_served_in_arrival_order():
    import threading
    import time

    from bot.engines.llm import FifoLock

    lock, served = FifoLock(), []

    def call(n):
        with lock:
            served.append(n)

    with lock:  # the model is busy; five turns arrive one after the other and wait
        threads = []
        for n in range(5):
            threads.append(threading.Thread(target=call, args=(n,)))
            threads[-1].start()
            while lock.waiting < n + 1:
                time.sleep(0.001)
    for thread in threads:
        thread.join()
    assert served == [0, 1, 2, 3, 4] and lock.waiting == 0
