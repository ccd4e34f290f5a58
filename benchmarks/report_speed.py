"""Speed of `fer-edge report` on a long run: a synthetic JSONL of N frames, then each step timed.

Not a test: it reports speed. The JSONL is built from real `FrameResult`s through
`edge.sinks.frame_record`, so it has exactly the runtime's format: --faces faces drifting across
a 1280x720 frame, each with its own slowly changing probabilities, at --fps frames per second.
The report then runs as `fer-edge report` runs it (one process, the chart included), and each
step is timed with time.perf_counter.

    python -m benchmarks.report_speed --frames 10000 --faces 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.cli import HelpFormatter


def write_synthetic_jsonl(path: Path, frames: int, faces: int, fps: float = 30.0, seed: int = 0) -> Path:
    """A run's JSONL: `faces` tracks over `frames` frames, each face's label changing now and then."""
    from edge.labels import LABELS
    from edge.sinks import JsonlSink
    from edge.types import Faces, Frame, FrameResult

    rng = np.random.default_rng(seed)
    image = np.zeros((1, 1, 3), np.uint8)  # frame_record never looks at the pixels
    c = len(LABELS)
    logits = rng.normal(0, 1, (faces, c))
    with JsonlSink(path) as sink:
        for i in range(frames):
            logits += rng.normal(0, 0.15, logits.shape)
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            x = (100 + 300 * np.arange(faces) + 40 * np.sin(i / 50 + np.arange(faces))).astype(np.int32)
            xyxy = np.stack([x, np.full(faces, 200), x + 180, np.full(faces, 380)], axis=1).astype(np.int32)
            result = FrameResult(
                frame=Frame(image, index=i, t=i / fps),
                faces=Faces(xyxy, np.full(faces, 0.9, np.float32), np.zeros((faces, 6, 2), np.float32)),
                track_ids=np.arange(1, faces + 1, dtype=np.int64), probs=probs.astype(np.float32), labels=LABELS,
                label_index=np.argmax(probs, axis=1))
            sink.write(result)
    return path


def run(frames: int, faces: int, fps: float, keep: str | None) -> dict:
    from edge import report as rp
    from edge import report_chart as rc

    tmp = tempfile.TemporaryDirectory(prefix="fer-edge-report-speed-")
    base = Path(keep) if keep else Path(tmp.name)
    base.mkdir(parents=True, exist_ok=True)
    jsonl = write_synthetic_jsonl(base / "run.jsonl", frames, faces, fps)
    out = base / "report"
    out.mkdir(exist_ok=True)
    config = rp.ReportConfig()
    times = {}
    t0 = time.perf_counter()
    rc.check_chart_dependency()  # the matplotlib import, as `fer-edge report` pays it
    times["import matplotlib"] = time.perf_counter() - t0
    t = time.perf_counter()
    log = rp.read_run(jsonl, max_gap_s=config.max_gap_s)
    times["read JSONL"] = time.perf_counter() - t
    t = time.perf_counter()
    summary = rp.summarize(log)
    shares = rp.label_shares(log)
    times["summarize"] = time.perf_counter() - t
    t = time.perf_counter()
    rc.write_timeline_png(log, summary, out / "timeline.png", config)
    times["timeline.png"] = time.perf_counter() - t
    t = time.perf_counter()
    rp.write_summary_csv(summary, out / "summary.csv")
    rp.write_frames_csv(log, out / "frames.csv")
    times["CSVs"] = time.perf_counter() - t
    t = time.perf_counter()
    (out / "report.md").write_text(rp.report_markdown(log, summary, shares, config, {}))
    times["report.md"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    # The same again through the one public entry point, as a check on the sum of the parts.
    t = time.perf_counter()
    rp.make_report(jsonl, out, config)
    whole = time.perf_counter() - t
    result = {"frames": frames, "faces_per_frame": faces, "face_rows": log.n_faces,
              "jsonl_mb": round(jsonl.stat().st_size / 1e6, 2), "steps_s": {k: round(v, 3) for k, v in times.items()},
              "total_s": round(total, 3), "make_report_s": round(whole, 3)}
    tmp.cleanup()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report_speed", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--faces", type=int, default=3, help="faces per frame")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--keep", default=None, metavar="DIR", help="keep the JSONL and the report here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    r = run(args.frames, args.faces, args.fps, args.keep)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['frames']:,} frames, {r['faces_per_frame']} faces per frame ({r['face_rows']:,} face rows, "
          f"{r['jsonl_mb']} MB of JSONL)")
    for k, v in r["steps_s"].items():
        print(f"  {k:<18} {v:7.3f} s")
    print(f"  {'total':<18} {r['total_s']:7.3f} s   (make_report alone, matplotlib already imported: "
          f"{r['make_report_s']:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
