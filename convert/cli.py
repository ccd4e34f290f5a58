"""`fer-edge convert`: Keras -> TFLite (float32, float16, dynamic, int8) with sidecars, and verification."""

from __future__ import annotations

import argparse
import shlex

from edge.cli import CliError, HelpFormatter, require
from train.data import DATA_ENV, default_data_path

_MODES = ("float32", "float16", "dynamic", "int8", "all")




def register(sub) -> None:
    p = sub.add_parser(
        "convert", help="quantize a .keras model to TFLite and verify every variant (needs [train])",
        formatter_class=HelpFormatter,
        description="Write OUT/<name>_<quant>.tflite and its JSON sidecar (labels, input size, the\n"
        "training's normalisation, crop policy, quantization, source sha256, accuracy on\n"
        "PublicTest/PrivateTest, this command). int8 is full-integer (int8 input and output),\n"
        "calibrated on a stratified sample of FER-2013 Training images. The normalisation\n"
        "comes from <model>.json or train_meta.json beside the model.",
        epilog="examples:\n  fer-edge convert runs/edge/best.keras --out models\n"
        "  fer-edge convert runs/edge/best.keras --quant all --out /tmp/variants --verify\n"
        "  fer-edge convert runs/edge/best.keras --quant all --out /tmp/variants --verify-only")
    p.add_argument("model", help="the trained .keras model (e.g. runs/edge/best.keras)")
    p.add_argument("--quant", action="append", metavar="MODE", default=None,
                   help=f"one of {', '.join(_MODES)}; repeat it or separate with commas "
                   "(default: int8, the shipped runtime model)")
    p.add_argument("--rep-data", "--data", dest="data", default=default_data_path(),
                   help="FER-2013 (fer2013.csv or a folder with train/ and test/; or set "
                   f"${DATA_ENV}): Training calibrates int8, PublicTest/PrivateTest score every variant")
    p.add_argument("--rep-size", type=int, default=500,
                   help="int8 calibration images, stratified by class (at least 500)")
    p.add_argument("--out", default="models", help="folder for the .tflite files and sidecars")
    p.add_argument("--name", default="emotion", help="file stem: OUT/<name>_<quant>.tflite")
    p.add_argument("--crop-margin", type=float, default=None,
                   help="runtime crop margin to record (default: the training metadata's)")
    p.add_argument("--crop-shift-y", type=float, default=None,
                   help="runtime crop downward shift to record (default: the training metadata's)")
    p.add_argument("--crop-align", action=argparse.BooleanOptionalAction, default=None,
                   help="record eye-line alignment in the crop policy (default: the training metadata's)")
    p.add_argument("--flip-average", action="store_true",
                   help="put the mirror average inside the graph: one invoke classifies each face and "
                   "its left-right mirror and returns the mean (about twice the time per face); the "
                   "sidecar records it, so the file alone reproduces the reported accuracy")
    p.add_argument("--keras-out", default=None, metavar="DIR",
                   help="also write the float model without optimizer state to DIR: <arch>.weights.h5 and "
                   "architecture.json (default: not written)")
    p.add_argument("--verify", action="store_true",
                   help="also time each variant (1 thread, single faces) and write a markdown + "
                   "JSON report with Keras as the reference row")
    p.add_argument("--verify-only", action="store_true",
                   help="convert nothing: verify the variants already in --out against MODEL")
    p.add_argument("--report-dir", default="reports/convert",
                   help="where --verify writes <name>_verify.md and .json")
    p.add_argument("--timing-faces", type=int, default=300,
                   help="real PublicTest crops timed one by one for the latency median")
    p.add_argument("--threads", type=int, default=None,
                   help="LiteRT threads for the accuracy runs (default: LiteRT's choice; "
                   "latency always uses 1)")
    p.set_defaults(func=_cmd_convert)


def _command(args, modes: tuple[str, ...]) -> str:
    """The canonical command line that reproduces this run (defaults made explicit)."""
    parts = ["fer-edge", "convert", args.model]
    for m in modes:
        parts += ["--quant", m]
    parts += ["--rep-data", args.data, "--rep-size", str(args.rep_size), "--out", args.out,
              "--name", args.name]
    if args.crop_margin is not None:
        parts += ["--crop-margin", repr(args.crop_margin)]
    if args.crop_shift_y is not None:
        parts += ["--crop-shift-y", repr(args.crop_shift_y)]
    if args.crop_align is not None:
        parts.append("--crop-align" if args.crop_align else "--no-crop-align")
    if args.flip_average:
        parts.append("--flip-average")
    if args.keras_out:
        parts += ["--keras-out", args.keras_out]
    if args.verify_only:
        parts.append("--verify-only")
    elif args.verify:
        parts.append("--verify")
    return shlex.join(parts)


def _cmd_convert(args) -> int:
    from convert.errors import ConvertError
    from convert.quantize import MIN_REP_SIZE, parse_modes, read_source

    try:
        modes = parse_modes(args.quant)
        # Cheap checks first, so a bad path fails before TensorFlow and the data load.
        source = read_source(args.model)
    except ConvertError as exc:
        raise CliError(str(exc)) from None
    if args.rep_size < MIN_REP_SIZE and "int8" in modes and not args.verify_only:
        raise CliError(f"representative set too small: --rep-size {args.rep_size} < {MIN_REP_SIZE}; "
                       f"int8 calibration needs at least {MIN_REP_SIZE} Training images")
    if args.timing_faces < 0:
        raise CliError("--timing-faces must be >= 0")
    require("tensorflow", "train")
    from train.data import DataError, load_fer2013

    try:
        data = load_fer2013(args.data)
    except DataError as exc:
        raise CliError(str(exc)) from None
    from convert.quantize import convert_model, verify_existing
    from convert.verify import write_report
    from edge.classify.preprocess import CropPolicy

    base = source.crop
    crop = CropPolicy(
        margin=base.margin if args.crop_margin is None else args.crop_margin,
        shift_y=base.shift_y if args.crop_shift_y is None else args.crop_shift_y,
        align=base.align if args.crop_align is None else args.crop_align)
    command = _command(args, modes)
    timing = args.timing_faces if (args.verify or args.verify_only) else 0
    try:
        if args.verify_only:
            report = verify_existing(args.model, modes, args.out, data, name=args.name, command=command,
                                     timing_faces=timing, num_threads=args.threads)
        else:
            result = convert_model(args.model, modes, args.out, data, name=args.name, crop=crop,
                                   rep_size=args.rep_size, command=command, timing_faces=timing,
                                   num_threads=args.threads, flip_average=args.flip_average)
            report = result.report
            for v in result.variants:
                m = v.card.metrics
                accs = ", ".join(f"{k.split('_')[0]} accuracy {m[k]:.4f}" for k in
                                 ("public_accuracy", "private_accuracy") if k in m)
                print(f"wrote {v.path} ({v.size_bytes / 1e6:.2f} MB) + {v.sidecar.name}: {accs}")
            if "int8" in modes:
                print(f"int8 calibrated on {result.rep_size} stratified Training images")
        if args.keras_out and not args.verify_only:
            from convert.quantize import export_keras

            weights, arch = export_keras(args.model, args.keras_out)
            print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB, weights only) + {arch.name}")
    except ConvertError as exc:
        raise CliError(str(exc)) from None
    if args.verify or args.verify_only:
        md, js = write_report(report, args.report_dir, f"{args.name}_verify")
        print()
        print(report.markdown())
        print(f"report: {md} and {js}")
    return 0
