"""`fer-edge report RUN.jsonl --out DIR`: emotion timelines and tables from a run's JSON Lines.

`fer-edge run --report DIR` calls `write_report` here when its run ends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli import CliError

SHOWN_BAD_LINES = 5  # warnings printed one per line; the rest are counted (report.md lists more)


def _add_report_arguments(p) -> None:
    from edge.report.types import ReportConfig

    d = ReportConfig()
    p.add_argument("--top", type=int, default=d.top, help="tracks on the chart and in report.md, longest first")
    p.add_argument("--smooth-s", type=float, default=d.smooth_s,
                   help="moving average of the charted probabilities, seconds (0: as recorded)")
    p.add_argument("--min-moment-s", type=float, default=d.min_moment_s,
                   help="report.md lists labels held at least this long")


def register(sub) -> None:
    from edge.cli import HelpFormatter

    p = sub.add_parser(
        "report", help="turn a run's JSONL into per-face emotion timelines, CSV tables and a markdown report",
        formatter_class=HelpFormatter,
        description="Read the JSON Lines of `fer-edge run` (video, camera or folder) and write into --out:\n"
        "  timeline.png  per track, smoothed probabilities over time in the overlay's colours\n"
        "  summary.csv   one row per track: first/last seen, time on screen, frames, share of each label,\n"
        "                dominant label, mean confidence\n"
        "  frames.csv    one row per face per frame, flat (pandas, a spreadsheet)\n"
        "  report.md     links to the above, the share of each label, the top tracks and their moments\n"
        "A malformed line is reported with its line number and skipped; --strict stops instead.",
        epilog="examples:\n  fer-edge run --source talk.mp4 --headless --jsonl talk.jsonl\n"
        "  fer-edge report talk.jsonl --out talk-report/\n"
        "  fer-edge run --source 0 --report session/   # written when the run ends, also on Ctrl-C",
    )
    p.add_argument("jsonl", help="the JSONL file of `fer-edge run`")
    p.add_argument("--out", required=True, help="folder for timeline.png, summary.csv, frames.csv and report.md")
    _add_report_arguments(p)
    p.add_argument("--no-chart", action="store_true", help="no timeline.png (needs no matplotlib)")
    p.add_argument("--strict", action="store_true", help="a malformed line is an error instead of a warning")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while reading")
    p.set_defaults(func=_cmd_report)


def _config(args):
    from edge.report.types import ReportConfig

    try:
        return ReportConfig(top=args.top, smooth_s=args.smooth_s, min_moment_s=args.min_moment_s,
                            chart=not args.no_chart, strict=args.strict)
    except ValueError as exc:
        raise CliError(f"report settings: {exc}") from None


def check_chart(config) -> None:
    """A missing matplotlib is a CliError now, not after a long run."""
    from edge.report.chart import MissingChartDependency, check_chart_dependency

    if config.chart:
        try:
            check_chart_dependency()
        except MissingChartDependency as exc:
            raise CliError(str(exc)) from None


def write_report(jsonl: str | Path, out_dir: str | Path, config, progress: bool | None = None):
    """make_report plus what the user should see on stderr; ReportError becomes CliError."""
    from edge.report.read import ReportError
    from edge.report.summary import make_report
    from edge.report.chart import MissingChartDependency

    if progress is None:
        progress = sys.stderr.isatty()
    try:
        outcome = make_report(jsonl, out_dir, config, progress=progress)
    except (ReportError, MissingChartDependency) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write the report into {out_dir}: {exc}") from None
    log = outcome.log
    for number, reason in log.bad_lines[:SHOWN_BAD_LINES]:
        print(f"warning: {log.path}: line {number}: {reason}; line skipped", file=sys.stderr)
    if log.n_bad > SHOWN_BAD_LINES:
        print(f"warning: {log.path}: {log.n_bad - SHOWN_BAD_LINES} more malformed line(s) skipped "
              f"(report.md lists up to {len(log.bad_lines)})", file=sys.stderr)
    kept = (f"{log.n_frames} images, {log.n_faces} faces" if log.images
            else f"{log.n_frames} frames, {log.n_faces} faces, {len(outcome.summary)} tracks")
    print(f"report: {kept}" + (f"; {log.n_bad} malformed line(s) skipped" if log.n_bad else "")
          + f" -> {outcome.paths['report']}", file=sys.stderr)
    return outcome


def _cmd_report(args: argparse.Namespace) -> int:
    config = _config(args)
    check_chart(config)
    write_report(args.jsonl, args.out, config, progress=False if args.no_progress else None)
    return 0
