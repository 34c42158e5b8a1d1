"""`kolite COMMAND --help` states every option's default, and says the same as the docs about threads and engines."""

from __future__ import annotations

import argparse

import pytest
from kolite.cli import build_parser, format_default


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", ["predict", "info", "serve", "label"])
def test_every_option_with_a_default_shows_it(name: str) -> None:
    parser = _subcommands()[name]
    help_text = " ".join(parser.format_help().split())
    for action in parser._actions:
        flags = [flag for flag in action.option_strings if flag.startswith("--")]
        if not flags or action.help == argparse.SUPPRESS or action.default in (None, False, argparse.SUPPRESS):
            continue
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            continue
        entry = help_text[help_text.index(flags[-1], help_text.index("options:")):]
        assert "default" in entry[: len(flags[-1]) + 400].lower(), f"kolite {name} {flags[-1]} hides its default"


def test_serve_help_shows_its_numbers() -> None:
    help_text = " ".join(_subcommands()["serve"].format_help().split())
    for shown in ("(default: 8080)", "(default: 16384)", "(default: 512)", "(default: 30.0)", "(default: kolite)"):
        assert shown in help_text


def test_threads_help_names_the_cpu_budget_not_physical_cores() -> None:
    for name in ("predict", "serve"):
        help_text = " ".join(_subcommands()[name].format_help().split())
        assert "CPU budget" in help_text and "default: physical cores" not in help_text
    assert "Ray Data" not in " ".join(_subcommands()["label"].format_help().split())


def test_defaults_are_written_as_typed() -> None:
    assert format_default(["a", "b"]) == "a,b"
    assert format_default("") == "''"
    assert format_default(2.5) == "2.5"
