"""README.md stays true: its settings table and its two opening commands."""

from __future__ import annotations

from pathlib import Path

from weir.core.readme import with_settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_table_matches_the_settings_class() -> None:
    text = README.read_text()
    assert with_settings_table(text) == text, "run: .venv/bin/python -m weir.core.readme"


def test_readme_opens_with_the_two_commands_and_ci_calls_the_test_one() -> None:
    opening = README.read_text().split("```", 2)[1]
    assert "make dev" in opening and "make test" in opening
    assert "make test" in (README.parent / ".ci" / "run").read_text()
