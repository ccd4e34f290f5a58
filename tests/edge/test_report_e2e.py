"""End to end: `fer-edge run` on a real video of two FER-2013 faces whose expressions change at
known times, then `fer-edge report`; and `fer-edge run --report` stopped by a real signal.

The faces are chosen at test time by running the shipped pipeline on each candidate where the
video will show it, keeping those it labels correctly and confidently, so the test holds for
any model that recognises some faces well, not only for today's.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FER_EDGE_SHARED", REPO.parent / "shared"))
FER_TEST = SHARED / "data" / "fer2013" / "test"
DETECTOR_DIR = SHARED / "models"

pytestmark = pytest.mark.skipif(
    not (FER_TEST.is_dir() and (DETECTOR_DIR / "blaze_face_short_range.tflite").is_file()),
    reason="needs FER-2013 test faces in ../shared/data/fer2013/test and the detector in ../shared/models")

SIZE = (1280, 720)
FPS = 15.0
SECONDS = 8.0
SLOTS = {"A": (180, 190, 300), "B": (780, 210, 300)}  # x, y, side of each face's square
SWITCH_S = {"A": 5.0, "B": 3.0}  # A: X until 5 s then Y (dominant X); B: X until 3 s then Y (dominant Y)
CANDIDATE_CLASSES = ("happy", "surprise", "neutral", "sad", "angry")
CANDIDATES_PER_CLASS = 30
MIN_CONFIDENCE = 0.6


def _background() -> np.ndarray:
    from benchmarks.scenes import make_background

    return make_background("room", SIZE, np.random.default_rng(7))


def _frame(background: np.ndarray, faces: dict[str, np.ndarray], i: int, rng=None) -> np.ndarray:
    from benchmarks.scenes import paste_face

    image = background.copy()
    for k, (name, face) in enumerate(sorted(faces.items())):
        x, y, side = SLOTS[name]
        dx = int(round(6 * math.sin(i / 9.0 + k)))  # a little head movement
        paste_face(image, face, (x + dx, y, x + dx + side, y + side))
    if rng is not None:  # sensor grain, new every frame
        image = np.clip(image + rng.normal(0, 2.0, image.shape), 0, 255).astype(np.uint8)
    return image


def _confident_faces() -> dict[str, list[np.ndarray]]:
    """Per class, the PublicTest faces the pipeline labels right at both slots with MIN_CONFIDENCE."""
    from edge.pipeline import Pipeline

    background = _background()
    found: dict[str, list[np.ndarray]] = {}
    with Pipeline.from_defaults(smooth=False, detector_model=str(DETECTOR_DIR / "blaze_face_short_range.tflite")) \
            as pipe:
        for cls in CANDIDATE_CLASSES:
            for path in sorted((FER_TEST / cls).glob("PublicTest_*.jpg"))[:CANDIDATES_PER_CLASS]:
                face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                ok = True
                for slot in SLOTS:
                    pipe.reset()
                    r = pipe.process(_frame(background, {slot: face}, 0), index=0, t=0.0)
                    if not (len(r.faces) == 1 and r.emotions[0] == cls and r.confidences[0] >= MIN_CONFIDENCE):
                        ok = False
                        break
                if ok:
                    found.setdefault(cls, []).append(face)
    return found


@pytest.fixture(scope="module")
def two_face_video(tmp_path_factory):
    """The video, and the truth: per face, its labels (X then Y) and the switch time."""
    from benchmarks.scenes import open_writer

    confident = _confident_faces()
    usable = sorted((c for c, v in confident.items() if len(v) >= 2), key=lambda c: -len(confident[c]))
    assert len(usable) >= 2, (
        f"the model labels too few FER-2013 PublicTest faces confidently to build the video: "
        f"{ {c: len(v) for c, v in confident.items()} } (need 2 faces in each of 2 classes)")
    x, y = usable[:2]
    sequence = {"A": (confident[x][0], confident[y][0]), "B": (confident[x][1], confident[y][1])}
    path = tmp_path_factory.mktemp("two_faces") / "two_faces.mp4"
    writer, written = open_writer(path, FPS, SIZE)
    background = _background()
    rng = np.random.default_rng(3)
    try:
        for i in range(int(SECONDS * FPS)):
            t = i / FPS
            faces = {name: pair[0] if t < SWITCH_S[name] else pair[1] for name, pair in sequence.items()}
            writer.write(_frame(background, faces, i, rng))
    finally:
        writer.release()
    return written, {"A": (x, y), "B": (x, y)}


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_faces_give_two_tracks_with_the_true_dominant_labels_and_switch_times(two_face_video, tmp_path,
                                                                                   capsys):
    video, labels = two_face_video
    jsonl = tmp_path / "run.jsonl"
    assert cli_main(["run", "--source", str(video), "--headless", "--jsonl", str(jsonl)]) == 0
    out = tmp_path / "report"
    assert cli_main(["report", str(jsonl), "--out", str(out)]) == 0
    capsys.readouterr()

    summary = _rows(out / "summary.csv")
    assert len(summary) == 2, summary  # one person, one row
    frames = _rows(out / "frames.csv")
    by_track: dict[str, list[dict]] = {}
    for row in frames:
        by_track.setdefault(row["track_id"], []).append(row)
    # Which track is which face: the left one is A.
    name_of = {tid: "A" if np.mean([int(r["x1"]) for r in rows]) < SIZE[0] / 2 else "B"
               for tid, rows in by_track.items()}
    assert sorted(name_of.values()) == ["A", "B"]
    for row in summary:
        name = name_of[row["track_id"]]
        first, second = labels[name]
        truth_dominant = first if SWITCH_S[name] > SECONDS / 2 else second
        assert row["dominant"] == truth_dominant, (name, row)
        rows = sorted(by_track[row["track_id"]], key=lambda r: float(r["t"]))
        emotions = [r["emotion"] for r in rows]
        assert emotions[0] == first and emotions[-1] == second, (name, emotions)
        # The switch: the first frame showing the second label with the first never shown again.
        last_first = max(k for k, e in enumerate(emotions) if e == first)
        switch_s = float(rows[last_first + 1]["t"])
        assert abs(switch_s - SWITCH_S[name]) <= 0.5, (name, switch_s, emotions)
    assert (out / "timeline.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "## Tracks (all 2, longest on screen first)" in md


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_report_is_written_when_a_signal_ends_the_run(sig, tmp_path):
    from edge_runtime_helpers import scene_video

    path = tmp_path / "long.mp4"
    truth, _ = scene_video(path, FER_TEST.parent, n_frames=150, size=(640, 480), face_px=(200, 240), seed=4)
    out = tmp_path / "session"
    env = {**os.environ, "FER_EDGE_MODEL_DIR": str(DETECTOR_DIR), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--source", str(path.parent / truth.video),
                             "--headless", "--report", str(out), "--max-fps", "5"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jsonl = out / "run.jsonl"
    try:
        deadline = time.monotonic() + 300  # generous: CI machines can be loaded
        while not (jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 5):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no output within 300 s"
            time.sleep(0.1)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert stdout == ""  # with --report, the JSONL goes to DIR/run.jsonl, not stdout
    frames = len(jsonl.read_text().splitlines())
    assert 5 <= frames < 150, "the run should have been stopped mid-video"
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "report.md", "run.jsonl", "summary.csv",
                                                     "timeline.png"]
    assert f"report: {frames} frames" in stderr and "Traceback" not in stderr
    assert f"{frames:,} frames" in (out / "report.md").read_text()
    assert len(_rows(out / "summary.csv")) >= 1
