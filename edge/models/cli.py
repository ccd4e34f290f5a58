"""`fer-edge models list` and `fer-edge models pull`: the face detector model files."""

from __future__ import annotations

import sys

from edge.cli import CliError, HelpFormatter
from edge.models import registry

_FMT = HelpFormatter


def register(sub) -> None:
    p = sub.add_parser(
        "models", help="list or download the face detector models", formatter_class=_FMT,
        description="The face detectors are MediaPipe's BlazeFace models. They are looked up in "
        f"this order: --detector-model PATH, the directory in ${registry.ENV_MODEL_DIR}, the user "
        f"cache ({registry.cache_dir()}). `pull` downloads them into the cache and checks their sha256.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    ls = msub.add_parser("list", help="each model and where it resolves from (or that it is missing)",
                         formatter_class=_FMT)
    ls.set_defaults(func=_cmd_list)

    pull = msub.add_parser("pull", help="download detector models into the cache, checking sha256",
                           formatter_class=_FMT)
    pull.add_argument("--range", choices=("short", "full", "all"), default="short",
                      help="short: faces within ~2 m (128x128); full: up to ~5 m (192x192)")
    pull.add_argument("--dest", default=None,
                      help=f"download into this directory (default: the user cache, {registry.cache_dir()})")
    pull.add_argument("--url-base", default=None,
                      help=f"fetch URL_BASE/<file name> from a mirror (default: ${registry.ENV_URL_BASE}, else the "
                      "official URL)")
    pull.add_argument("--force", action="store_true", help="download again even if a good copy exists")
    pull.add_argument("--timeout-s", type=float, default=30.0, help="network timeout per read, seconds")
    pull.set_defaults(func=_cmd_pull)


def _cmd_list(args) -> int:
    sources = {"env": f"${registry.ENV_MODEL_DIR}", "cache": "user cache"}
    for name, model in registry.DETECTOR_MODELS.items():
        path, source = registry.locate_detector_model(name)
        if path is not None:
            status = f"{sources[source]}: {path}"
        else:
            status = "MISSING: run `fer-edge models pull" + ("" if name == "short" else f" --range {name}") + "`"
        print(f"{name:7s}  {model.filename:40s}  {status}")
    try:
        print(f"{'emotion':7s}  {'emotion_int8.tflite':40s}  shipped: {registry.default_emotion_model()}")
    except registry.ModelNotFoundError as exc:
        print(f"{'emotion':7s}  {'emotion_int8.tflite':40s}  MISSING: {exc}")
    return 0


def _cmd_pull(args) -> int:
    from tqdm import tqdm

    ranges = registry.RANGES if args.range == "all" else (args.range,)
    for name in ranges:
        model = registry.detector_model(name)
        bars: list = []  # created on the first bytes, so a failed connection prints no empty bar

        def progress(done: int, total: int | None, bars=bars, desc=model.filename) -> None:
            if not bars:
                bars.append(tqdm(desc=desc, total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                 file=sys.stderr, leave=False))
            bars[0].update(done - bars[0].n)

        try:
            path = registry.pull_detector_model(name, args.dest, args.url_base, force=args.force,
                                              timeout_s=args.timeout_s, progress=progress)
        except registry.ModelDownloadError as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:  # e.g. an unwritable --dest
            raise CliError(f"could not write {model.filename}: {exc}") from None
        finally:
            for bar in bars:
                bar.close()
        print(f"{name}: {path} (sha256 ok)")
    return 0
