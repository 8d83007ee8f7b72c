"""``guichet ingest`` on the command line: vectors copied from the indexes named by ``--reuse-vectors-from`` and
``GUICHET_REUSE_VECTORS_FROM``, how many from each, and a French warning for one that cannot lend them. The fake
embedder stands in for the real one; the real command runs in ``tests/e2e``."""

import pytest
from typer.testing import CliRunner

from guichet.cli import app
from ingestion import builder
from tests.conftest import FakeEmbedder
from tests.unit.test_builder import CountingEmbedder, stored_vectors, write_national_and_commune


@pytest.fixture
def national_and_commune(tmp_path, demo_corpus):
    return write_national_and_commune(tmp_path, demo_corpus)


@pytest.fixture
def embedder(monkeypatch):
    """The embedder ``guichet ingest`` loads, counting the passages it embeds."""
    counting = CountingEmbedder(FakeEmbedder())
    monkeypatch.setattr("bot.engines.embedder.SentenceTransformerEmbedder", lambda *args, **kwargs: counting)
    monkeypatch.setenv("GUICHET_INGEST_NICE", "0")  # never lower the test process's priority
    return counting


def test_ingest_copies_the_vectors_of_the_indexes_named_by_option_and_setting(
    national_and_commune, tmp_path, embedder, monkeypatch
):
    national, commune = national_and_commune
    builder.build([national], tmp_path / "national-index", FakeEmbedder())
    shared = len(stored_vectors(tmp_path / "national-index"))
    monkeypatch.setenv("GUICHET_REUSE_VECTORS_FROM", f"{tmp_path / 'national-index'},{tmp_path / 'absent'}")

    result = CliRunner().invoke(
        app,
        ["ingest", str(commune), "--index", str(tmp_path / "index"), "--reuse-vectors-from", str(tmp_path / "other")],
    )
    assert result.exit_code == 0, result.output
    assert f"Attention : vecteurs de {tmp_path / 'other'} non réutilisés : ce dossier n'existe pas" in result.output
    assert f"Attention : vecteurs de {tmp_path / 'absent'} non réutilisés" in result.output
    assert f"Vecteurs réutilisés : {shared} de {tmp_path / 'national-index'}\n" in result.output
    assert embedder.count == len(stored_vectors(tmp_path / "index")) - shared > 0


def test_ingest_names_this_index_among_the_lenders_on_a_rebuild(national_and_commune, tmp_path, embedder):
    national, commune = national_and_commune
    builder.build([national], tmp_path / "national-index", FakeEmbedder())
    command = ["ingest", str(commune), "--index", str(tmp_path / "index")]
    CliRunner().invoke(app, command)

    embedder.count = 0
    result = CliRunner().invoke(app, [*command, "--reuse-vectors-from", str(tmp_path / "national-index")])
    passages = len(stored_vectors(tmp_path / "index"))
    assert result.exit_code == 0 and embedder.count == 0
    assert f"Vecteurs réutilisés : {passages} de cet index, 0 de {tmp_path / 'national-index'}" in result.output
