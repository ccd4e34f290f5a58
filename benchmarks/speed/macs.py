"""Multiply-accumulates per invoke of a .tflite model, counted from its graph.

The base of the README's Raspberry Pi estimate: a Pi's speed is not measured here, so it is
estimated from the work per frame and published per-core figures.

    python -m benchmarks.speed.macs models/emotion_int8.tflite $FER_EDGE_MODEL_DIR/blaze_face_short_range.tflite
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from edge.interpreter import load_interpreter


@dataclass(frozen=True, slots=True)
class ModelMacs:
    path: str
    macs: int  # conv, depthwise conv and fully connected layers, for one invoke
    ops: int  # how many of those layers


def count_macs(path: str) -> ModelMacs:
    """MACs of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED ops (the rest is noise next to them)."""
    interp = load_interpreter(path, num_threads=1)
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interp.get_tensor_details()}
    macs = n = 0
    for op in interp._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = shapes[int(op["outputs"][0])]
        weights = shapes[int(op["inputs"][1])]
        # Every weight is used once per output position: conv (out_c, kh, kw, in_c) and depthwise
        # (1, kh, kw, out_c) per output pixel, fully connected (out, in) per input row.
        macs += int(np.prod(out[:-1])) * int(np.prod(weights))
        n += 1
    return ModelMacs(str(path), macs, n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed.macs", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help=".tflite files")
    args = parser.parse_args(argv)
    for path in args.models:
        m = count_macs(path)
        print(f"{m.macs / 1e6:9.1f} M MACs  {m.ops:3d} layers  {m.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
