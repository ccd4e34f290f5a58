"""`fer-edge --help` for every runtime, web and benchmark subcommand: each option explained, its default shown once."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import build_parser, configure_logging, install_hint, version_text

REPO = Path(__file__).resolve().parents[3]
# Owned by the training and conversion stages, whose help their own issue rewrites.
NOT_HERE = {"data", "train", "evaluate", "convert"}


def _commands():
    """(name, parser) for every subcommand, nested ones as 'bench scenes'."""
    out = []

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    if prefix or name not in NOT_HERE:
                        out.append((f"{prefix}{name}", child))
                        walk(child, f"{prefix}{name} ")

    walk(build_parser(), "")
    return out


COMMANDS = _commands()


def test_the_runtime_commands_are_all_covered():
    names = {name for name, _ in COMMANDS}
    assert {"run", "serve", "models", "models pull", "bench", "bench classifier", "bench soak",
            "bench all"} <= names


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_option_has_help_and_its_default_once(name, parser):
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        text = formatter._expand_help(action) if action.help else ""
        flag = "/".join(action.option_strings)
        assert text.strip(), f"fer-edge {name} {flag}: no help text"
        n = text.count("default")
        if action.required:  # nothing to default to: the usage line marks it as required
            assert n == 0, f"fer-edge {name} {flag}: a required option shows a default: {text!r}"
        elif action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction):
            assert n <= 1, f"fer-edge {name} {flag}: default shown {n} times: {text!r}"  # an on/off flag
        else:
            assert n == 1, f"fer-edge {name} {flag}: default shown {n} times: {text!r}"
    assert "(default: None)" not in parser.format_help()


def test_version_and_log_level_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("fer-edge ") and out.strip() == version_text()
    from edge import __version__

    assert __version__ in out
    args = build_parser().parse_args(["run", "--log-level", "debug", "--source", "v.mp4"])
    assert args.log_level == "debug"
    assert build_parser().parse_args(["--log-level", "warning", "run"]).log_level == "warning"
    assert build_parser().parse_args(["run"]).log_level == "info"


def test_log_level_holds_other_libraries_at_warning():
    root, ours = logging.getLogger(), logging.getLogger("edge")
    saved = root.level, ours.level, list(root.handlers)
    try:
        configure_logging("info")
        assert ours.getEffectiveLevel() == logging.INFO
        assert logging.getLogger("waitress").getEffectiveLevel() == logging.WARNING
        configure_logging("error")
        assert logging.getLogger("edge.capture.thread").getEffectiveLevel() == logging.ERROR
    finally:
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        root.handlers[:] = saved[2]


def test_install_hint_fits_a_checkout():
    hint = install_hint("web")
    assert hint.startswith("pip install '.[web]'")
    assert str(REPO) in hint  # this test runs from a checkout
    assert "fer-edge[web]" not in hint


def test_version_from_the_command_line():
    out = subprocess.run([sys.executable, "-m", "edge", "--version"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("fer-edge ")
