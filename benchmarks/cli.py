"""`fer-edge bench`: the pipeline benchmark, and its subcommands (classifier, soak, photos, all; and from
their own modules threshold, scenes, calibrate, crowd, gil).

    fer-edge bench --source video.mp4 --frames 300 --json reports/bench.json
    fer-edge bench classifier --models-dir models
    fer-edge bench soak --source video.mp4 --frames 10000
    fer-edge bench all --out reports/
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge.cli import HelpFormatter
from edge.cli.pipeline_flags import add_pipeline_args, config_from_args
from train.data import DATA_ENV, default_data_path

log = logging.getLogger(__name__)

_FMT = HelpFormatter


def _add_pipeline_args(p: argparse.ArgumentParser, frames: int, json_help: str) -> None:
    p.add_argument("--source", default=None, help="video file or camera index (0, 1, ...); no default: required")
    p.add_argument("--frames", type=int, default=frames, help="frames to measure (a short video is rewound)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="measure for S seconds instead of --frames (default: count frames)")
    p.add_argument("--warmup", type=int, default=10, help="frames run before measuring")
    add_pipeline_args(p)
    p.add_argument("--no-draw", action="store_true", help="do not time the overlay")
    p.add_argument("--json", default=None, metavar="OUT", help=json_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args, peer: str):
    from benchmarks.speed.pipeline import BenchConfig

    from edge.cli import CliError

    if args.source is None:
        raise CliError("pass --source VIDEO (or a camera index), or a subcommand: "
                       "fer-edge bench {classifier,soak,all,...} --help")
    if args.frames < 1 and args.duration is None:
        raise CliError("--frames must be at least 1")
    return BenchConfig(source=str(args.source), pipeline=config_from_args(args), frames=args.frames,
                       duration_s=args.duration, warmup=args.warmup, draw=not args.no_draw, peer=peer)


def _default_json(args, prefix: str) -> Path:
    stem = "camera" + str(args.source) if str(args.source).isdigit() else Path(str(args.source)).stem
    return Path("reports") / f"{prefix}_{stem}.json"


def register(sub) -> None:
    p = sub.add_parser(
        "bench", formatter_class=_FMT,
        help="benchmarks: pipeline latency/fps/CPU/RSS per stage, classifier variants, soak, all",
        description="Run the real pipeline on a video file or camera and report, per stage (decode, detect, "
                    "preprocess, classify, track, draw), latency p50/p95/p99/mean; end-to-end latency and "
                    "frames/s; CPU % and peak RSS; faces per frame. When the peer `fer` is installed it runs "
                    "on the same frames and the frames/s ratio is printed. Writes JSON, markdown and a PNG.")
    _add_pipeline_args(p, frames=300, json_help="JSON report path; .md and .png are written beside it "
                                                "(default: reports/bench_<source>.json)")
    p.add_argument("--peer", choices=("auto", "on", "off"), default="auto",
                   help="also run the peer `fer` (auto: when installed)")
    p.set_defaults(func=_cmd_pipeline)
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH")

    c = bsub.add_parser("classifier", formatter_class=_FMT, help="ms per face for each model variant",
                        description="Time every .tflite (with its .json sidecar) in a folder on FER-2013 "
                                    "PrivateTest crops: 1/2/4 threads, one face per call and batches; "
                                    "PrivateTest accuracy of each; the peer's classifier when installed.")
    c.add_argument("--models-dir", default=None, help="folder of .tflite + .json (default: the shipped models/)")
    c.add_argument("--data", default=default_data_path(), help=f"FER-2013 folder or fer2013.csv (or set ${DATA_ENV})")
    c.add_argument("--threads", default="1,2,4", help="comma-separated thread counts")
    c.add_argument("--batch-size", type=int, default=4, help="faces per call in batched mode")
    c.add_argument("--iters", type=int, default=300, help="timed calls per (threads, mode)")
    c.add_argument("--limit", type=int, default=None, help="use only the first N PrivateTest crops (default: all)")
    c.add_argument("--peer", choices=("auto", "on", "off"), default="auto", help="also the peer's classifier")
    c.add_argument("--json", default="reports/classifier.json", metavar="OUT", help="JSON report (.md beside it)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_classifier)

    s = bsub.add_parser("soak", formatter_class=_FMT, help="RSS growth of `fer-edge run` over many frames",
                        description="Run the loop of `fer-edge run --headless` itself (capture thread, pipeline, "
                                    "JSON Lines sink to /dev/null, run summary) for --warmup + --frames frames "
                                    "(a shorter video is first copied, looped, to that length), read RSS after "
                                    "every frame and report its growth and its slope per 10,000 frames, with an "
                                    "RSS-over-time plot. --duration and --no-draw do not apply here.")
    _add_pipeline_args(s, frames=10_000, json_help="JSON report path; .md and .png beside it "
                                                   "(default: reports/soak_<source>.json)")
    s.set_defaults(func=_cmd_soak)

    ph = bsub.add_parser("photos", formatter_class=_FMT, help="end-to-end accuracy on a labelled folder of real photos",
                         description="Run every photo of FOLDER/<class>/ through the whole runtime (detector, crop, "
                                     "classifier): the largest face counts, a photo without a face counts as wrong. "
                                     "Reports faces found, accuracy, per-class and macro recall, with the peer `fer` "
                                     "on the same photos when it is installed. Writes photos.json/.md/.png.")
    ph.add_argument("folder", help="labelled photos: FOLDER/<class>/<image>, classes named like the model's labels")
    add_pipeline_args(ph, groups=("detector", "model"), skip=("--carry-frames",))  # stills: nothing to carry
    ph.add_argument("--peer", choices=("auto", "on", "off"), default="auto",
                    help="also run the peer `fer` (auto: when installed)")
    ph.add_argument("--calibrate", action="store_true",
                    help="also search the crop policy on one half of the photos and report it on the other")
    ph.add_argument("--negatives", action="store_true",
                    help="also count faces found in face-free crops of the photos (the strips beside each face)")
    ph.add_argument("--out", default="reports/photos", help="output folder")
    ph.add_argument("--no-progress", action="store_true", help="no progress bars")
    ph.set_defaults(func=_cmd_photos)

    a = bsub.add_parser("all", formatter_class=_FMT, help="every benchmark of the README's results table",
                        description="Make the benchmark videos (640x480 one face, 640x360 two faces) from "
                                    "FER-2013 PrivateTest crops, run the pipeline (and the peer) on both, the "
                                    "classifier variants, the scenes accuracy (when available) and optionally "
                                    "a soak; write OUT/RESULTS.md and the JSONs.")
    a.add_argument("--out", default="reports", help="output folder")
    a.add_argument("--data", default=default_data_path(), help=f"FER-2013 folder or fer2013.csv (or set ${DATA_ENV})")
    a.add_argument("--frames", type=int, default=300, help="frames per pipeline run")
    add_pipeline_args(a, groups=("model", "runtime"))
    a.add_argument("--models-dir", default=None, help="classifier variants folder (default: the shipped models/)")
    a.add_argument("--classifier-iters", type=int, default=300, help="timed calls per classifier cell")
    a.add_argument("--soak-frames", type=int, default=0, help="also a soak of N frames (0: skip)")
    a.add_argument("--peer", choices=("auto", "on", "off"), default="auto", help="also run the peer `fer`")
    a.add_argument("--scenes", choices=("auto", "off"), default="auto",
                   help="end-to-end accuracy on synthetic scenes (benchmarks.scenes.accuracy); off skips it")
    a.add_argument("--limit", type=int, default=None,
                   help="use only the first N PrivateTest crops, for quick runs (default: all)")
    a.add_argument("--no-progress", action="store_true", help="no progress bars")
    a.set_defaults(func=_cmd_all)

    from benchmarks.scenes import accuracy, calibrate, crowd, threshold
    from benchmarks.speed import gil

    for module in (threshold, accuracy, calibrate, crowd, gil):
        module.register(bsub)


def _print_outputs(paths: dict) -> None:
    for kind, path in paths.items():
        print(f"{kind}: {path}", file=sys.stderr)


def _measure(args, peer: str, run, module, prefix: str) -> int:
    """Run a benchmark of the pipeline on --source; write, print and list its outputs."""
    from benchmarks.speed.pipeline import BenchError

    from edge.cli import CliError, require

    require("matplotlib", "bench")  # the plot; checked before minutes of measuring
    cfg = _config(args, peer=peer)
    try:
        report = run(cfg, progress=not args.no_progress)
    except (BenchError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    paths = module.write_outputs(report, args.json or _default_json(args, prefix))
    print(module.markdown(report))
    _print_outputs(paths)
    return 0


def _cmd_pipeline(args) -> int:
    from benchmarks.speed import pipeline as bp

    return _measure(args, args.peer, bp.run_pipeline_bench, bp, "bench")


def _cmd_soak(args) -> int:
    from benchmarks.speed import soak

    return _measure(args, "off", soak.run_soak, soak, "soak")


def _cmd_photos(args) -> int:
    from benchmarks.photos import accuracy as photos

    from edge.cli import CliError, require

    require("matplotlib", "bench")
    try:
        report = photos.run_photos(args.folder, config_from_args(args), peer=args.peer, calibrate=args.calibrate,
                                   negatives=args.negatives, progress=not args.no_progress)
    except (photos.PhotosError, FileNotFoundError, ImportError) as exc:
        raise CliError(str(exc)) from None
    paths = photos.write_outputs(report, args.out)
    print(photos.markdown(report))
    if "calibration" in report:
        c = report["calibration"]["chosen"]
        print(f"chosen crop policy -> fer-edge convert ... --crop-margin {c['margin']:.2f} "
              f"--crop-shift-y {c['shift_y']:.2f} {'--crop-align' if c['align'] else '--no-crop-align'}")
    _print_outputs(paths)
    return 0


def _threads(text: str) -> tuple[int, ...]:
    from edge.cli import CliError

    try:
        t = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        t = ()
    if not t or min(t) < 1:
        raise CliError(f"--threads {text!r}: expected positive integers such as 1,2,4")
    return t


def _models_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    from edge.models.registry import default_emotion_model

    return default_emotion_model().parent


def _cmd_classifier(args) -> int:
    from benchmarks.speed import classifier as bc

    from edge.cli import CliError

    threads = _threads(args.threads)
    try:
        variants = bc.find_variants(_models_dir(args.models_dir))
        crops, labels = bc.load_private_test(args.data, limit=args.limit)
        report = bc.bench_classifier(variants, crops, labels, threads=threads, batch_size=args.batch_size,
                                     iters=args.iters, peer=args.peer, progress=not args.no_progress)
    except (FileNotFoundError, ImportError, ValueError) as exc:
        raise CliError(str(exc)) from None
    paths = bc.write_outputs(report, args.json)
    print(bc.markdown(report))
    _print_outputs(paths)
    return 0


def _cmd_all(args) -> int:
    from benchmarks import results as br

    from edge.cli import CliError, require

    require("matplotlib", "bench")

    try:
        paths = br.run_all(out_dir=args.out, data=args.data, frames=args.frames, pipeline=config_from_args(args),
                           models_dir=args.models_dir,
                           classifier_iters=args.classifier_iters, soak_frames=args.soak_frames, peer=args.peer,
                           scenes=args.scenes, limit=args.limit, progress=not args.no_progress)
    except (FileNotFoundError, ImportError, ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    print(Path(paths["results"]).read_text())
    _print_outputs(paths)
    return 0

