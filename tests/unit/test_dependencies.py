"""Every package the code imports at run time is declared in pyproject.toml, not only present by chance."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from bot.settings import REPO_ROOT

RUN_TIME = ("bot", "ingestion", "guichet", "eval", "training")


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_a_declared_dependency():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_normalised(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    imported = set()
    for folder in RUN_TIME:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - set(RUN_TIME) - {"tools", "tests"}
    owners = packages_distributions()
    undeclared = {m: owners.get(m) for m in third_party if not {_normalised(d) for d in owners.get(m, [])} & declared}
    assert undeclared == {}
