import json
import shutil

import faiss
import numpy as np
import pytest

from bot.engines.index import CURRENT, Index, live_generation
from ingestion import builder
from ingestion.chunker import Chunk
from tests.conftest import write


@pytest.fixture
def corpus(tmp_path, demo_corpus):
    root = tmp_path / "corpus"
    shutil.copytree(demo_corpus, root)
    return root


class CountingEmbedder:
    """Wraps the fake embedder and counts how many texts it embedded."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension, self.count = inner, inner.name, inner.dimension, 0
        self.calls = []

    def embed_documents(self, texts):
        self.count += len(texts)
        self.calls.append(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def test_build_writes_manifest_and_searchable_index(corpus, tmp_path, fake_embedder):
    report = builder.build([corpus], tmp_path / "index", fake_embedder)
    assert report.documents == 13 and report.chunks > 30 and report.problems == []
    index = Index.open(tmp_path / "index")
    manifest = index.manifest
    assert manifest["embedder"] == "fake-embedder" and manifest["dimension"] == 64
    assert manifest["chunk_count"] == report.chunks and len(manifest["corpus_hash"]) == 64
    hits = index.search(fake_embedder.embed_query("prix passeport majeur"), "prix passeport majeur", k=3)
    assert hits[0].chunk.source == "carte-identite-passeport.html"


def test_chunks_reach_the_embedder_by_length_and_each_vector_stays_with_its_chunk(corpus, tmp_path, fake_embedder):
    embedder = CountingEmbedder(fake_embedder)
    builder.build([corpus], tmp_path / "index", embedder)
    lengths = [len(text) for batch in embedder.calls for text in batch]
    assert len(embedder.calls) > 1 and lengths == sorted(lengths)  # batches pad their texts to similar lengths
    generation = live_generation(tmp_path / "index")
    chunks = [Chunk(**json.loads(line)) for line in (generation / "chunks.jsonl").read_text().splitlines()]
    stored = faiss.read_index(str(generation / "dense.faiss")).reconstruct_n(0, len(chunks))
    expected = fake_embedder.embed_documents([chunk.embedding_text() for chunk in chunks])
    assert np.allclose(stored, expected)  # in document order again, whatever order they were embedded in


def test_rebuild_embeds_only_changed_chunks_and_drops_deleted_documents(corpus, tmp_path, fake_embedder):
    embedder = CountingEmbedder(fake_embedder)
    first = builder.build([corpus], tmp_path / "index", embedder)
    assert embedder.count == first.chunks

    embedder.count = 0
    again = builder.build([corpus], tmp_path / "index", embedder)
    assert (embedder.count, again.reused, again.removed) == (0, first.chunks, 0)

    (corpus / "marche.md").write_text((corpus / "marche.md").read_text().replace("1,20 €", "1,30 €"))
    removed = [c for c in Index.open(tmp_path / "index").chunks if c.source == "cimetiere.md"]
    (corpus / "cimetiere.md").unlink()
    embedder.count = 0
    changed = builder.build([corpus], tmp_path / "index", embedder)
    assert embedder.count == 1 and changed.removed == len(removed) + 1
    sources = {c.source for c in Index.open(tmp_path / "index").chunks}
    assert "cimetiere.md" not in sources
    assert len([p for p in (tmp_path / "index").iterdir() if p.name.startswith("gen-")]) == 3  # kept for rollback


def test_bad_files_are_reported_not_fatal(corpus, tmp_path, fake_embedder):
    write(corpus / "vide.md", "")
    write(corpus / "casse.pdf", b"%PDF-1.4 not really")
    write(corpus / "zz-copie.md", (corpus / "marche.md").read_text())
    write(corpus / "photo.jpg", b"\xff\xd8\xff")
    write(corpus / ".cache" / "x.md", "# caché")
    report = builder.build([corpus], tmp_path / "index", fake_embedder)
    problems = {p["source"]: p["problem"] for p in report.problems}
    assert problems == {
        "vide.md": "empty",
        "casse.pdf": "unusable",
        "zz-copie.md": "duplicate",
        "photo.jpg": "unsupported",
    }
    assert report.documents == 13
    saved = json.loads((live_generation(tmp_path / "index") / "report.json").read_text())
    assert len(saved["problems"]) == 4


def test_a_build_killed_midway_leaves_the_previous_index_live(corpus, tmp_path, fake_embedder, monkeypatch):
    builder.build([corpus], tmp_path / "index", fake_embedder)
    before = (tmp_path / "index" / CURRENT).read_text()
    write(corpus / "nouveau.md", "# Nouveau\n\nUne nouvelle page.")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process were killed while writing the index

    monkeypatch.setattr(builder.faiss, "write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        builder.build([corpus], tmp_path / "index", fake_embedder)
    assert (tmp_path / "index" / CURRENT).read_text() == before
    assert all(c.source != "nouveau.md" for c in Index.open(tmp_path / "index").chunks)


def test_index_refuses_another_embedder(corpus, tmp_path, fake_embedder):
    from bot.errors import IndexError_

    builder.build([corpus], tmp_path / "index", fake_embedder)
    with pytest.raises(IndexError_, match="run 'guichet ingest' again"):
        Index.open(tmp_path / "index").check_embedder("embeddinggemma-300m", 768)


def test_missing_index_says_how_to_build_it(tmp_path):
    from bot.errors import IndexError_

    with pytest.raises(IndexError_, match="run 'guichet ingest"):
        Index.open(tmp_path / "nothing")


NATIONAL = ("carte-identite-passeport.html", "etat-civil.md", "urbanisme.md")  # stand-ins for the national fiches


class OtherVectors(CountingEmbedder):
    """Same name and dimension as the fake embedder, other vectors: a copied vector is told from a computed one."""

    def embed_documents(self, texts):
        return -super().embed_documents(texts)


def stored_vectors(index_dir):
    """The live generation's vector of each chunk hash."""
    generation = live_generation(index_dir)
    chunks = [json.loads(line) for line in (generation / "chunks.jsonl").read_text().splitlines()]
    dense = faiss.read_index(str(generation / "dense.faiss"))
    return {chunk["hash"]: dense.reconstruct(row) for row, chunk in enumerate(chunks)}


def write_national_and_commune(folder, demo):
    """The national fiches alone, and a commune's corpus holding them (under another folder) beside its own pages."""
    national, commune = folder / "national", folder / "commune"
    for name in NATIONAL:
        write(national / name, (demo / name).read_bytes())
        write(commune / "fiches" / name, (demo / name).read_bytes())
    for name in ("marche.md", "cimetiere.md", "salle-des-fetes.md"):
        write(commune / name, (demo / name).read_bytes())
    return national, commune


@pytest.fixture
def national_and_commune(tmp_path, demo_corpus):
    return write_national_and_commune(tmp_path, demo_corpus)


def test_a_commune_index_embeds_only_the_passages_the_national_index_does_not_hold(
    national_and_commune, tmp_path, fake_embedder
):
    national, commune = national_and_commune
    builder.build([national], tmp_path / "national-index", fake_embedder)
    shared = stored_vectors(tmp_path / "national-index")

    embedder = OtherVectors(fake_embedder)
    report = builder.build([commune], tmp_path / "index", embedder, reuse_from=[tmp_path / "national-index"])
    vectors = stored_vectors(tmp_path / "index")
    own = set(vectors) - set(shared)
    assert own and set(shared) <= set(vectors)  # the fiches' passages hash the same under another folder
    assert embedder.count == len(own) == report.embedded  # only the commune's own pages were embedded
    assert report.reused == report.chunks - len(own) and report.reused_from == {
        str(tmp_path / "national-index"): len(shared)
    }
    # Copied, not computed: this embedder's vectors are the opposite of the first one's.
    assert all(np.array_equal(vectors[h], shared[h]) and vectors[h].any() for h in shared)

    embedder.count = 0  # a rebuild finds everything in its own index first
    again = builder.build([commune], tmp_path / "index", embedder, reuse_from=[tmp_path / "national-index"])
    assert embedder.count == 0 and again.reused_from == {
        str(tmp_path / "index"): again.chunks,
        str(tmp_path / "national-index"): 0,
    }


def test_an_index_of_another_embedder_or_dimension_is_not_reused_and_the_build_says_so(
    national_and_commune, tmp_path, fake_embedder
):
    from tests.conftest import FakeEmbedder

    national, commune = national_and_commune
    renamed = CountingEmbedder(fake_embedder)
    renamed.name = "another-embedder"
    builder.build([national], tmp_path / "renamed", renamed)
    builder.build([national], tmp_path / "narrower", FakeEmbedder(dimension=32))

    warnings = []
    embedder = OtherVectors(fake_embedder)
    report = builder.build(
        [commune],
        tmp_path / "index",
        embedder,
        reuse_from=[tmp_path / "renamed", tmp_path / "narrower"],
        warn=warnings.append,
    )
    assert embedder.count == len(stored_vectors(tmp_path / "index")) and (report.reused, report.reused_from) == (0, {})
    assert [s["index"] for s in report.reuse_skipped] == [str(tmp_path / "renamed"), str(tmp_path / "narrower")]
    assert "another-embedder (dimension 64)" in warnings[0] and "fake-embedder (dimension 32)" in warnings[1]
    assert len(warnings) == 2 and all("non réutilisés" in w for w in warnings)


def test_a_missing_or_damaged_index_is_warned_and_the_build_still_reuses_the_good_one(
    national_and_commune, tmp_path, fake_embedder
):
    national, commune = national_and_commune
    builder.build([national], tmp_path / "syndicate" / "index", fake_embedder)
    shutil.copytree(tmp_path / "syndicate" / "index", tmp_path / "damaged")
    with open(live_generation(tmp_path / "damaged") / "chunks.jsonl", "a") as chunks:
        chunks.write(json.dumps({"hash": "0" * 32}) + "\n")  # one passage more than vectors: rows would be wrong

    warnings = []
    reuse = [tmp_path / "absent", tmp_path / "damaged", tmp_path / "syndicate", tmp_path / "syndicate" / "index"]
    report = builder.build([commune], tmp_path / "index", fake_embedder, reuse_from=reuse, warn=warnings.append)
    assert len(warnings) == 3 and report.problems == []
    assert "absent non réutilisés : ce dossier n'existe pas" in warnings[0]
    assert "index endommagé" in warnings[1] and "vecteurs de dimension 64 pour" in warnings[1]
    assert f"il y en a un dans {tmp_path / 'syndicate' / 'index'}" in warnings[2]  # a commune's folder, not its index
    shared = len(stored_vectors(tmp_path / "syndicate" / "index"))
    assert (
        report.reused_from == {str(tmp_path / "syndicate" / "index"): shared}
        and report.embedded == report.chunks - shared
    )
    assert Index.open(tmp_path / "index").chunks  # the build completed and is live
