"""A town's sources, declared in one file (``config/sources.yaml``), brought up to date by ``guichet sync``.

Three kinds:

- ``dila``: the Service-Public.fr fiches from a DILA archive (a local ``.zip`` / ``.tar.*`` or its URL);
- ``website``: the town's own site, read from its sitemap (``ingestion.website``);
- ``folder``: files someone copies into a folder, as before.

The first two are mirrored into ``<sources dir>/<name>/``, with what was last fetched in ``.state.json``; the index
is then rebuilt incrementally from the mirrors and folders (``ingestion.builder.build`` embeds only new passages).
A source that fails keeps its mirror as it was: a failed sync never empties an index.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from lxml import etree

from bot.errors import ConfigError
from ingestion import dila

log = logging.getLogger(__name__)
KINDS = ("dila", "website", "folder")
STATE = ".state.json"
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_ARCHIVE_BYTES = 2_000_000_000
MAX_FICHE_BYTES = 5_000_000


@dataclass(frozen=True)
class Source:
    """One declared source: a name (its folder), a kind, where it is, and the kind's options."""

    name: str
    kind: str
    location: str  # a path (relative to the sources file) or an http(s) URL
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))


@dataclass
class SourceReport:
    """What syncing one source did."""

    name: str
    kind: str
    status: str = "unchanged"  # unchanged, updated, failed (the mirror kept as it was)
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    not_fetched: int = 0  # asked again and answered "not modified" (website), or skipped by date (dila)
    problems: list[str] = field(default_factory=list)  # per document; the rest of the source is kept
    error: str = ""  # why the whole source failed
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SourceFailed(Exception):
    """The source could not be read whole; its last good content stays."""


def load_sources(path: Path) -> list[Source]:
    """The sources file: ``sources: [{name, kind, path | url, …options}]``; a bad entry is named."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the sources file ({exc}).") from None
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected 'sources:' with a list of sources.")
    found, names = [], set()
    for n, entry in enumerate(entries, 1):
        where = f"{path}, source {n}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected name, kind and path or url.")
        name, kind = str(entry.get("name", "")), str(entry.get("kind", ""))
        if not NAME.match(name) or name in names:
            raise ConfigError(f"{where}: 'name' must be unique, lower case letters, digits and dashes ({name!r}).")
        if kind not in KINDS:
            raise ConfigError(f"{where} ({name}): 'kind' must be one of {', '.join(KINDS)}.")
        location = str(entry.get("url") or entry.get("path") or "")
        if not location:
            raise ConfigError(f"{where} ({name}): give 'path' (a file or folder) or 'url'.")
        if kind == "folder" and location.startswith(("http://", "https://")):
            raise ConfigError(f"{where} ({name}): a folder source takes a 'path'.")
        if kind == "website" and not location.startswith(("http://", "https://")):
            raise ConfigError(f"{where} ({name}): a website source takes the 'url' of its sitemap.")
        if not location.startswith(("http://", "https://")):
            location = str((path.parent / location).resolve())
        options = {k: v for k, v in entry.items() if k not in ("name", "kind", "url", "path")}
        names.add(name)
        found.append(Source(name, kind, location, options))
    return found


# ---------------------------------------------------------------------------------------------------------------
# The mirror of a source: its files and what was last fetched, written so that a crash leaves the last good state.


class Mirror:
    """``<sources dir>/<name>/``: the source's documents and ``.state.json`` (per document: its date, hash, ETag…)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.state: dict[str, dict[str, Any]] = {}
        if (folder / STATE).exists():
            try:
                self.state = json.loads((folder / STATE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.state = {}  # unreadable: every document is fetched again, none is lost

    def write(self, relative: str, data: bytes) -> None:
        target = self._inside(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", delete=False) as out:
            out.write(data)
        os.replace(out.name, target)

    def remove(self, relative: str) -> None:
        self._inside(relative).unlink(missing_ok=True)
        self.state.pop(relative, None)

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.write(STATE, json.dumps(self.state, indent=1, sort_keys=True, ensure_ascii=False).encode())

    def _inside(self, relative: str) -> Path:
        return self.folder.joinpath(*inside_parts(relative))


def inside_parts(relative: str) -> tuple[str, ...]:
    """The parts of a path a source names, refused (``SourceFailed``) if it would leave the source's folder."""
    path = PurePosixPath(relative)
    if not path.parts or path.is_absolute() or ".." in path.parts:
        raise SourceFailed(f"refused path outside the source's folder: {relative!r}")
    return path.parts


# ---------------------------------------------------------------------------------------------------------------
# The national fiches from a DILA archive.


def sync_dila(source: Source, mirror: Mirror, fetch: Callable[[str], bytes]) -> SourceReport:
    """Bring the mirror to the archive's fiches: only those whose bytes changed (a new ``dc:date`` changes them) are
    rewritten, those gone from the archive are removed. The whole archive is checked before anything is replaced."""
    report = SourceReport(source.name, source.kind)
    data = fetch(source.location) if source.is_url else _read_local(Path(source.location))
    expected = str(source.options.get("sha256", "")).lower()
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise SourceFailed("the archive's sha256 is not the one declared: not used")
    fiches = dict(_fiches(data))
    if not fiches:
        raise SourceFailed("the archive holds no Service-Public.fr fiche: not used")
    for relative, (body, date) in fiches.items():
        digest = hashlib.sha256(body).hexdigest()
        before = mirror.state.get(relative)
        if before and before.get("sha256") == digest:  # the same bytes: the same date too
            report.unchanged += 1
            report.not_fetched += 1
            continue
        mirror.write(relative, body)
        mirror.state[relative] = {"date": date, "sha256": digest}
        if before:
            report.changed += 1
        else:
            report.added += 1
    for gone in sorted(set(mirror.state) - set(fiches)):
        mirror.remove(gone)
        report.removed += 1
    report.status = "updated" if report.added or report.changed or report.removed else "unchanged"
    return report


def _read_local(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            raise SourceFailed(f"{path.name} is over {MAX_ARCHIVE_BYTES // 1_000_000} MB")
        return path.read_bytes()
    except OSError as exc:
        raise SourceFailed(f"cannot read {path}: {exc.strerror or exc}") from None


def _fiches(data: bytes) -> Iterator[tuple[str, tuple[bytes, str]]]:
    """(path inside the archive, (bytes, date)) of every fiche; a damaged archive or fiche, or a path outside the
    source's folder, fails the whole source before anything is written."""
    try:
        members = list(_members(data))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise SourceFailed(f"damaged or unknown archive ({exc})") from None
    for name, body in members:
        if not name.lower().endswith(".xml") or not dila.is_dila_fiche(body[:4096]):
            continue
        try:
            root = dila.read_xml(body)
        except etree.XMLSyntaxError as exc:
            raise SourceFailed(f"{name}: not well-formed XML ({exc}); archive not used") from None
        relative = _relative(name)
        inside_parts(relative)
        yield relative, (body, dila.modified(root))


def _members(data: bytes) -> Iterator[tuple[str, bytes]]:
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if (bad := archive.testzip()) is not None:
                raise zipfile.BadZipFile(f"{bad} fails its CRC check")
            for info in archive.infolist():
                if not info.is_dir() and info.file_size <= MAX_FICHE_BYTES:
                    yield info.filename, archive.read(info)
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for info in archive:
            if info.isfile() and info.size <= MAX_FICHE_BYTES:
                handle = archive.extractfile(info)
                if handle is not None:
                    yield info.name, handle.read()


def _relative(name: str) -> str:
    """The path as the archive names it, without a leading ``/`` or ``./`` (the citations' document names)."""
    return PurePosixPath(name.lstrip("/")).as_posix().removeprefix("./")


# ---------------------------------------------------------------------------------------------------------------
# All sources, then the index.


def sync_all(sources: list[Source], sources_dir: Path, timeout: float) -> list[SourceReport]:
    """``sync_sources`` over the network: archives downloaded, websites crawled, with one HTTP client."""
    import httpx

    from ingestion.website import sync_website

    with httpx.Client(timeout=timeout, follow_redirects=True) as client:

        def fetch(url: str) -> bytes:
            return download(client, url)

        def website(source: Source, mirror: Mirror) -> SourceReport:
            return sync_website(source, mirror, client)

        return sync_sources(sources, sources_dir, fetch, website)


def download(client: Any, url: str, max_bytes: int = MAX_ARCHIVE_BYTES) -> bytes:
    """A whole archive, or ``SourceFailed`` (network, an HTTP error, too large)."""
    import httpx

    try:
        response = fetched(client, url, {}, max_bytes)
    except httpx.HTTPError as exc:
        raise SourceFailed(f"{url} unreachable ({type(exc).__name__})") from None
    if response.status != 200:
        raise SourceFailed(f"{url} answered {response.status}")
    return response.content


@dataclass(frozen=True)
class Fetched:
    """One HTTP response, its body read whole (and decoded from any transfer compression)."""

    status: int
    headers: Any  # httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        charset = re.search(r"charset=([\w-]+)", self.headers.get("Content-Type", ""), re.I)
        return self.content.decode(charset.group(1) if charset else "utf-8", errors="replace")


def fetched(client: Any, url: str, headers: dict[str, str], max_bytes: int) -> Fetched:
    """GET ``url`` with ``client`` (httpx), its body capped at ``max_bytes`` (``SourceFailed`` beyond)."""
    with client.stream("GET", url, headers=headers) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise SourceFailed(f"{url} is over {max_bytes // 1_000_000} MB")
        return Fetched(response.status_code, response.headers, bytes(body))


def sync_sources(
    sources: list[Source],
    sources_dir: Path,
    fetch: Callable[[str], bytes],
    website: Callable[[Source, Mirror], SourceReport] | None = None,
) -> list[SourceReport]:
    """Sync every source (one failing never stops the others); returns one report per source."""
    reports = []
    for source in sources:
        started = time.monotonic()
        mirror = Mirror(sources_dir / source.name)
        try:
            if source.kind == "dila":
                report = sync_dila(source, mirror, fetch)
            elif source.kind == "website":
                if website is None:
                    raise SourceFailed("website sources are not available here")
                report = website(source, mirror)
            else:
                report = _folder(source)
            if source.kind != "folder":
                mirror.save()
        except SourceFailed as exc:
            report = SourceReport(source.name, source.kind, status="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one source's unforeseen failure never stops the others
            log.exception("source %s failed", source.name)
            report = SourceReport(source.name, source.kind, status="failed", error=f"{type(exc).__name__}: {exc}")
        report.seconds = round(time.monotonic() - started, 2)
        reports.append(report)
    return reports


def _folder(source: Source) -> SourceReport:
    folder = Path(source.location)
    if not folder.is_dir():
        raise SourceFailed(f"{folder} is not a folder")
    count = sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return SourceReport(source.name, source.kind, unchanged=count)


def roots_of(sources: list[Source], sources_dir: Path) -> list[Path]:
    """What the index is built from: each mirror, each folder (those that exist: a source never synced is skipped)."""
    roots = [Path(s.location) if s.kind == "folder" else sources_dir / s.name for s in sources]
    return [r for r in roots if r.exists() and any(p for p in r.rglob("*") if p.name != STATE)]
