"""README.md lists exactly the install extras that pyproject.toml defines."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A list item such as "- `sql`: ..." or "- `test` and `docs`: ...".
EXTRA_ITEM = re.compile(r"^- `([a-z]+)`(?: and `([a-z]+)`)?:", re.MULTILINE)


def _installation_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Installation", 1)[1].split("\n## ", 1)[0]


def test_readme_extras_match_pyproject() -> None:
    """Every extra in pyproject.toml has a README item, and every item names an extra."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    defined = set(pyproject["project"]["optional-dependencies"])

    listed = {name for item in EXTRA_ITEM.findall(_installation_section()) for name in item if name}

    assert listed == defined
