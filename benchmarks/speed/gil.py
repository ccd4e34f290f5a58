"""Does a stage release the GIL? `fer-edge bench gil` measures it, for the two-thread frame loop.

While one thread runs a stage's work (a LiteRT invoke, an OpenCV resize or JPEG encode), a second
thread spins a pure-Python counter. If the work holds the GIL, the counter stalls for the work's
whole duration (it advances only at the interpreter's switch interval); if the work releases it,
the counter runs at its solo rate on a free core, or at about half of it when the two threads
share one core. A pure-Python loop is the reference for "holds the GIL". The result does not
depend on a free second core, so it can be measured on a busy machine.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from edge.cli import HelpFormatter


class _Spinner:
    """A Python thread counting as fast as the GIL lets it, while the block runs."""

    def __init__(self):
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="gil-spinner")

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.count += 1

    def __enter__(self) -> "_Spinner":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _spin_rate(seconds: float) -> float:
    with _Spinner() as spinner:
        time.sleep(seconds)
    return spinner.count / seconds


def python_progress(work, repeats: int = 3) -> dict:
    """Run work() while a Python thread spins; its rate meanwhile as a fraction of its solo rate."""
    solo = _spin_rate(0.2)
    fractions, work_ms = [], []
    with _Spinner() as spinner:
        time.sleep(0.05)
        for _ in range(repeats):
            c0, t0 = spinner.count, time.perf_counter()
            work()
            t1, c1 = time.perf_counter(), spinner.count
            fractions.append((c1 - c0) / (t1 - t0) / solo)
            work_ms.append((t1 - t0) * 1e3)
    return {"python_thread_rate": float(np.median(fractions)), "work_ms": float(np.median(work_ms))}


def run_gil_bench(detector_model: str | None = None) -> dict:
    import cv2

    from edge.interpreter import load_interpreter
    from edge.models.registry import resolve_detector_model

    interp = load_interpreter(resolve_detector_model("short", detector_model), num_threads=1)
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, [1, 384, 384, 3])  # one tile of the tiled scan
    interp.allocate_tensors()
    interp.set_tensor(index, np.random.default_rng(0).uniform(-1, 1, (1, 384, 384, 3)).astype(np.float32))
    image = np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    cases = {
        "LiteRT invoke, BlazeFace 384x384 tile, x10": lambda: [interp.invoke() for _ in range(10)],
        "cv2.resize 1920x1080 -> 1280x720 (area), x10": lambda: [cv2.resize(image, (1280, 720),
                                                                            interpolation=cv2.INTER_AREA)
                                                               for _ in range(10)],
        "cv2.imencode JPEG 1920x1080, x3": lambda: [cv2.imencode(".jpg", image) for _ in range(3)],
        "pure Python loop (holds the GIL; reference)": lambda: sum(range(2_000_000)),
    }
    return {name: python_progress(work) for name, work in cases.items()}


def gil_markdown(report: dict, command: str = "") -> str:
    lines = ["# Which stages release the GIL", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += ["A Python thread spins while the work runs; its rate meanwhile, against its rate alone "
              "(about 50 % when the two threads share one core, 100 % on a free core; near 0 when the work "
              "holds the GIL).", "", "| work | work ms | Python thread's rate meanwhile |", "|---|---:|---:|"]
    for name, r in report.items():
        lines.append(f"| {name} | {r['work_ms']:.0f} | {100 * r['python_thread_rate']:.0f} % |")
    return "\n".join(lines) + "\n"


def register(sub) -> None:
    p = sub.add_parser("gil", help="which pipeline stages release the GIL (for the two-thread frame loop)",
                       description=__doc__.split("\n\n")[1], formatter_class=HelpFormatter)
    p.add_argument("--detector-model", default=None, help="short-range detector .tflite (default: FER_EDGE_MODEL_DIR / cache)")
    p.add_argument("--json", default="reports/gil.json", help="JSON report (.md beside it)")
    p.set_defaults(func=_cmd_gil)


def _cmd_gil(args) -> int:
    from edge.cli import command_line

    report = run_gil_bench(args.detector_model)
    command = command_line()
    md = gil_markdown(report, command)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"report": report, "command": command}, indent=2) + "\n")
    path.with_suffix(".md").write_text(md)
    print(md)
    return 0
