"""`fer-edge`: the one command-line entry point. Only this layer prints, sets up logging or exits.

Each stage registers its own subcommands (`register(subparsers)` in its `cli` module), so the
stages stay independent and heavy imports (TensorFlow, Flask) happen only when that
subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (module, what it provides); each module has register(subparsers).
_COMMAND_MODULES = (
    "train.cli",  # data, train, evaluate
    "convert.cli",  # convert
    "edge.run_cli",  # run
    "edge.report_cli",  # report
    "edge.models_cli",  # models
    "benchmarks.cli",  # bench
    "edge.web.cli",  # serve
)


class CliError(Exception):
    """An error the user can fix; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-edge",
        description="Real-time facial expression recognition for laptops and Raspberry Pis: "
        "train and evaluate a FER-2013 CNN, quantize it to TFLite, and run it live on "
        "cameras, videos and images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `fer-edge COMMAND --help` for each command's options.\n"
        "Start here: `fer-edge run` (camera 0, window) or `fer-edge run --source video.mp4`.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that stage is not part of this install
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose + 1, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        print(f"fer-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2


def require(module: str, extra: str) -> None:
    """Fail with the install command when an optional dependency is missing."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise CliError(f"this command needs {module!r}: pip install 'fer-edge[{extra}]'") from None


if __name__ == "__main__":
    sys.exit(main())
