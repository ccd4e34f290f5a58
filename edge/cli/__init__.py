"""`fer-edge`: the one command-line entry point. Only this layer prints, sets up logging or exits.

Each stage registers its own subcommands (`register(subparsers)` in its `cli` module), so the
stages stay independent and heavy imports (TensorFlow, Flask) happen only when that
subcommand runs. This module is the dispatcher and what every command shares (CliError,
HelpFormatter, StopOnSignals, require); beside it:

    run.py             `fer-edge run`: a source through the pipeline into the window and outputs
    pipeline_flags.py  the pipeline's flags, declared once for every command that builds a Pipeline
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

# (module, what it provides); each module has register(subparsers).
_COMMAND_MODULES = (
    "train.cli",  # data, train, evaluate
    "convert.cli",  # convert
    "edge.cli.run",  # run
    "edge.report.cli",  # report
    "edge.batch.cli",  # batch
    "edge.models.cli",  # models
    "benchmarks.cli",  # bench
    "edge.web.cli",  # serve
)


LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LOG_LEVEL = "info"
# Our own loggers follow --log-level; other libraries' are held at warning, so the console
# carries fer-edge's lines only (native libraries' chatter is routed in edge.console).
OWN_LOGGERS = ("edge", "benchmarks", "convert", "train")


class CliError(Exception):
    """An error the user can fix; printed without a traceback. Exit code 2 (a usage error) unless
    `exit_code` says otherwise (1: the work began and failed on the way, e.g. a full disk)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows each option's default once, and keeps the examples as written.

    The default is appended unless the help text already says it; options whose default is
    unset (None, "") or off (False) get none appended: their help says what happens without them.
    A description or epilog with line breaks (examples) is kept as written, others are wrapped.
    """

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or action.default == "" or "default" in text:
            return text
        return super()._get_help_string(action)


class StopOnSignals:
    """SIGINT and SIGTERM stop a command cleanly; the previous handlers come back on exit.

        with StopOnSignals(stop):                 # a loop that polls the Event (run)
        with StopOnSignals(stop, interrupt=True): # code that blocks: also KeyboardInterrupt (serve, train)

    Each signal sets `stop`. With `interrupt`, it also raises KeyboardInterrupt in the main
    thread, which unwinds a blocking call (waitress's loop, Keras' fit) through its cleanup;
    without, only a second Ctrl-C does (the user really wants out). Installed from the main
    thread only (Python allows no other); elsewhere it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: threading.Event | None = None, *, interrupt: bool = False):
        self.stop = stop if stop is not None else threading.Event()
        self.interrupt = interrupt
        self.signum: int | None = None  # the first signal received
        self._old: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        again = self.stop.is_set()
        self.signum = self.signum or signum
        self.stop.set()
        if self.interrupt or (again and signum == signal.SIGINT):
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def command_line() -> str:
    """The `fer-edge ...` command being run, quoted for a shell: reports record what made them."""
    import shlex

    return " ".join(["fer-edge", *(shlex.quote(a) for a in sys.argv[1:])])


def int_pair(text: str) -> tuple[int, int]:
    """An argparse type: "N" -> (N, N); "A,B" or "WxH" -> (A, B)."""
    try:
        vals = [int(v) for v in text.lower().replace("x", ",").split(",")]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"expected N or A,B (or WxH), got {text!r}")
    return vals[0], vals[1]


def version_text() -> str:
    """`fer-edge --version`: ours, and the versions that decide how models run."""
    from edge import __version__
    from edge.machine import package_version

    parts = [f"fer-edge {__version__}", f"Python {sys.version.split()[0]}"]
    for dist in ("ai-edge-litert", "opencv-contrib-python", "numpy"):
        if (version := package_version(dist)) is not None:
            parts.append(f"{dist} {version}")
    return ", ".join(parts)


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def _add_log_level(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=default,
                        help=f"console log level (default: {DEFAULT_LOG_LEVEL}); native libraries' "
                        "messages show at debug")


def _subparsers(parser: argparse.ArgumentParser):
    """Every subcommand's parser, nested ones too, each once."""
    seen: set[int] = set()
    stack = [parser]
    while stack:
        for action in stack.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    if id(child) not in seen:
                        seen.add(id(child))
                        stack.append(child)
                        yield child


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
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: the same as --log-level debug")
    _add_log_level(parser, DEFAULT_LOG_LEVEL)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that stage is not part of this install
            raise
        module.register(sub)
    for child in _subparsers(parser):
        # Also after the subcommand (`fer-edge run --log-level debug`); unset there, the
        # top-level value stands.
        _add_log_level(child, argparse.SUPPRESS)
    return parser


def configure_logging(level_name: str) -> None:
    """Our loggers at `level_name`, everyone else's at warning (or debug, when asked for)."""
    level = getattr(logging, level_name.upper())
    logging.basicConfig(level=max(level, logging.WARNING) if level > logging.DEBUG else level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    from edge.console import quiet_video_libraries

    quiet_video_libraries(debug=level <= logging.DEBUG)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("debug" if args.verbose else args.log_level)
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
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`fer-edge evaluate ... | head`): what it wanted is printed; the
        # outputs are written before anything is printed. Silence the interpreter's own flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def install_hint(extra: str) -> str:
    """The pip command that adds an extra, for an install made from a checkout (`pip install .`)."""
    from pathlib import Path

    checkout = Path(__file__).resolve().parents[2]
    pyproject = checkout / "pyproject.toml"
    if pyproject.is_file() and 'name = "fer-edge"' in pyproject.read_text(errors="replace"):
        return f"pip install '.[{extra}]' (in {checkout})"
    return f"pip install '.[{extra}]' in the fer-edge checkout you installed from"


def require(module: str, extra: str) -> None:
    """Fail with the install command when an optional dependency is missing."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise CliError(f"this command needs {module!r}: {install_hint(extra)}") from None

