"""The folder tree is the architecture: channels (web, phone) -> answer path -> engines, checked on every run.

The contracts live in pyproject.toml (``[tool.importlinter]``); an import the wrong way fails this test. The
linter runs in its own process: it reconfigures logging, which would silence the other tests' loggers.
"""

import subprocess
import sys
from pathlib import Path

from bot.settings import REPO_ROOT


def test_imports_follow_the_layers():
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(linter), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
