"""Keeps README.md's settings table equal to the Settings class: `python -m weir.core.readme`."""

from __future__ import annotations

import sys
from pathlib import Path

from weir.core.config import settings_table

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def with_settings_table(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(with_settings_table(path.read_text()))
