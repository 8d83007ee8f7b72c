"""`guichet sync` end to end with the real models: fiches from a DILA archive built from the shared corpus, indexed;
the archive republished with a new fee; one sync later the answer gives the new fee; a damaged archive fails its
source, keeps the index and exits 1."""

import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

from bot.settings import REPO_ROOT
from tests.conftest import SHARED

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FICHES = ["F14929", "F14930", "F1342", "F21089"]  # the adult's and the minor's passport, and neighbours
ASK = "Combien coûte un passeport pour un adulte ?"


def publish(path, changes: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(path, "w") as out:
        for name in FICHES:
            source = SHARED / "service-public-fiches-vdd" / "particuliers" / f"{name}.xml"
            if source.exists():
                out.writestr(f"particuliers/{name}.xml", (changes or {}).get(name, source.read_bytes()))


def guichet(*args: str, mirrors) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "guichet.cli", *args]
    env = os.environ | {"GUICHET_SOURCES_DIR": str(mirrors)}
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=900, env=env)


def test_an_updated_fiche_is_answered_from_its_new_text_after_one_sync(tmp_path):
    archive, index, mirrors = tmp_path / "vosdroits.zip", tmp_path / "index", tmp_path / "sources"
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - {{name: fiches, kind: dila, path: {archive}}}\n", encoding="utf-8")
    env = ["--sources", str(sources), "--index", str(index)]
    publish(archive)
    first = guichet("sync", *env, mirrors=mirrors)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "fiches" in first.stdout and "mis à jour" in first.stdout
    before = json.loads(guichet("ask", ASK, "--index", str(index), "--json", mirrors=mirrors).stdout)
    assert "86" in before["answer"]

    adult = (SHARED / "service-public-fiches-vdd" / "particuliers" / "F14929.xml").read_bytes()
    adult = re.sub(rb"<dc:date>[^<]*</dc:date>", b"<dc:date>modified 2026-11-30</dc:date>", adult, count=1)
    publish(archive, {"F14929": adult.replace("86\u00a0€".encode(), "96\u00a0€".encode())})
    second = guichet("sync", *env, mirrors=mirrors)
    assert second.returncode == 0, second.stderr[-3000:]
    assert re.search(r"fiches\s.*mis à jour", second.stdout)
    after = json.loads(guichet("ask", ASK, "--index", str(index), "--json", mirrors=mirrors).stdout)
    assert "96" in after["answer"] and "86" not in after["answer"], after

    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    damaged = guichet("sync", *env, mirrors=mirrors)
    assert damaged.returncode == 1 and "en échec" in damaged.stdout
    assert "96" in json.loads(guichet("ask", ASK, "--index", str(index), "--json", mirrors=mirrors).stdout)["answer"]
