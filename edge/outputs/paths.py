"""Where `fer-edge run` writes: every output path checked before the first frame, and what a
write that fails mid-run says.

Each check names the option that gave the path, so `[Errno 21] Is a directory` becomes
"--jsonl out: is a folder ...". A missing parent folder is an error, never created silently
(a typo would otherwise scatter folders); `--out-dir` and `--report` may name a new folder
whose parent exists. Whether a place can be written is found out by writing there (a probe
file, removed again), because permission bits alone are wrong for root and for read-only mounts.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge.cli import CliError


@dataclass(frozen=True)
class OutputPath:
    option: str  # the flag that named it, e.g. "--jsonl"
    path: str
    folder: bool  # a folder the run writes into (--out-dir, --report), else a file


def output_paths(config) -> list[OutputPath]:
    """The paths a RunConfig writes to, each with the option that named it (stdout's "-" is none)."""
    out = []
    if config.jsonl and config.jsonl != "-":
        out.append(OutputPath("--jsonl", config.jsonl, False))
    if config.save_video:
        out.append(OutputPath("--save-video", config.save_video, False))
    if config.out_dir:
        out.append(OutputPath("--out-dir", config.out_dir, True))
    if config.report:
        out.append(OutputPath("--report", config.report, True))
    return out


def check_output_paths(config) -> None:
    """CliError (exit 2) naming the option, for the first output path that cannot be written."""
    for out in output_paths(config):
        check_output_path(out.option, out.path, folder=out.folder)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_output_path(option: str, path: str, *, folder: bool = False) -> None:
    p = Path(path)
    if p.is_dir() and not folder:
        raise CliError(f"{option} {path} is a folder; give a file name, e.g. {p / _example_name(option)}")
    if p.exists() and not p.is_dir() and folder:
        raise CliError(f"{option} {path} is a file; it takes a folder (a new one is made if its parent exists)")
    parent = p.parent if not (folder and p.is_dir()) else p
    if not parent.exists():
        raise CliError(f"{option} {path}: the folder {parent} does not exist. Create it first "
                       f"(mkdir -p {parent}) or choose another place")
    if not parent.is_dir():
        raise CliError(f"{option} {path}: {parent} is a file, not a folder")
    try:
        if folder:
            _probe_folder(parent)
        else:
            _probe_file(p)
    except OSError as exc:
        raise CliError(f"{option} {path}: cannot write in {parent}: {_reason(exc)}") from None


def _example_name(option: str) -> str:
    return {"--jsonl": "run.jsonl", "--save-video": "annotated.mp4"}.get(option, "out")


def _probe_folder(folder: Path) -> None:
    fd, name = tempfile.mkstemp(prefix=".fer-edge-probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


def _probe_file(path: Path) -> None:
    """Open the file for appending (its content stays); a file made only by this probe is removed."""
    existed = path.exists()
    with open(path, "ab"):
        pass
    if not existed:
        path.unlink()


def stopped_message(exc: OSError, where: str, sinks) -> str:
    """What a write that failed mid-run says: the option, the reason, where the run stopped, and
    what each JSON Lines file kept (whole lines: a cut line is removed again)."""
    from edge.outputs.sinks import JsonlSink

    kept = [f"{s.path} keeps the {s.lines} frame(s) written before it, as whole lines"
            for s in sinks if isinstance(s, JsonlSink) and s.path is not None]
    return f"{exc}. The run stopped at {where}" + ("; " + "; ".join(kept) if kept else "") + "."


def make_output_folders(config) -> None:
    """Make the --out-dir and --report folders (their parents were checked to exist): OutputError."""
    from edge.outputs.sinks import OutputError

    for out in output_paths(config):
        if out.folder:
            try:
                Path(out.path).mkdir(exist_ok=True)
            except OSError as exc:
                raise OutputError(out.option, out.path, exc) from None
