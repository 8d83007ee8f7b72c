"""jambonz's own verb validator (``@jambonz/verb-specifications``, pinned in ``tests/jambonz/package.json``), run by
Node on the verb arrays Guichet returns, so a verb a real gateway would reject fails the tests, not a call.

``make test`` installs it (``npm ci --prefix tests/jambonz``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CHECKER = Path(__file__).parent / "jambonz" / "validate.js"
INSTALL = "npm ci --prefix tests/jambonz (Node.js and npm: apt-get install nodejs npm)"


def rejected(arrays: dict[str, list[dict]]) -> dict[str, str]:
    """jambonz's rejection message for each named verb array it would not accept (empty when all pass)."""
    node = shutil.which("node")
    if node is None or not (CHECKER.parent / "node_modules" / "@jambonz" / "verb-specifications").is_dir():
        pytest.fail(f"jambonz's verb validator is not installed: run {INSTALL}")
    done = subprocess.run(
        [node, str(CHECKER)], input=json.dumps(arrays), capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"jambonz's verb validator failed: {done.stderr.strip()}")
    return {name: error for name, error in json.loads(done.stdout).items() if error}
