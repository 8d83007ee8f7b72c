"""The examples in the docstrings are run, so they cannot drift from the code they show."""

import doctest
import importlib

import pytest

from bot.settings import REPO_ROOT

MODULES = sorted(
    str(path.relative_to(REPO_ROOT).with_suffix("")).replace("/", ".")
    for folder in ("bot", "ingestion", "eval")
    for path in (REPO_ROOT / folder).rglob("*.py")
    if "migrations" not in path.parts  # Alembic's scripts run inside a migration, not as modules
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
