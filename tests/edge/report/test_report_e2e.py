"""End to end: `fer-edge run` on a real video of two FER-2013 faces whose expressions change at
known times, then `fer-edge report`; and `fer-edge run --report` stopped by a real signal.

The video comes from benchmarks.demos.timeline: its faces are chosen at test time by running the
pipeline on each candidate where the video will show it, keeping those it labels correctly and
confidently, so the test holds for any model that recognises some faces well, not only today's.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main as cli_main

REPO = Path(__file__).resolve().parents[3]
# This checkout's model, with the preprocessing of this checkout (an installed fer-edge may be
# another checkout's).
EMOTION_MODEL = REPO / "models" / "emotion_int8.tflite"


@pytest.fixture(scope="module")
def two_face_video(tmp_path_factory, faces_dir, detector_dir):
    from benchmarks.demos.timeline import make_two_face_video

    path = tmp_path_factory.mktemp("two_faces") / "two_faces.mp4"
    return make_two_face_video(faces_dir, path, model=str(EMOTION_MODEL), detector_model=str(detector_dir))


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_faces_give_two_tracks_with_the_true_dominant_labels_and_switch_times(two_face_video, tmp_path,
                                                                                   capsys):
    truth = two_face_video
    jsonl = tmp_path / "run.jsonl"
    assert cli_main(["run", "--source", str(truth.video), "--headless", "--jsonl", str(jsonl),
                     "--model", str(EMOTION_MODEL)]) == 0
    out = tmp_path / "report"
    assert cli_main(["report", str(jsonl), "--out", str(out)]) == 0
    capsys.readouterr()

    summary = _rows(out / "summary.csv")
    assert len(summary) == 2, summary  # one person, one row
    frames = _rows(out / "frames.csv")
    by_track: dict[str, list[dict]] = {}
    for row in frames:
        by_track.setdefault(row["track_id"], []).append(row)
    def face_of(rows: list[dict]) -> str:
        cx = np.mean([(int(r["x1"]) + int(r["x2"])) / 2 for r in rows])
        return min(truth.slots, key=lambda n: abs(truth.slots[n][0] + truth.slots[n][2] / 2 - cx))

    name_of = {tid: face_of(rows) for tid, rows in by_track.items()}
    assert sorted(name_of.values()) == ["A", "B"]
    for row in summary:
        name = name_of[row["track_id"]]
        first, second = truth.labels[name]
        assert row["dominant"] == truth.dominant(name), (name, row)
        rows = sorted(by_track[row["track_id"]], key=lambda r: float(r["t"]))
        emotions = [r["emotion"] for r in rows]
        assert emotions[0] == first and emotions[-1] == second, (name, emotions)
        # The switch: the first frame showing the second label with the first never shown again.
        last_first = max(k for k, e in enumerate(emotions) if e == first)
        switch_s = float(rows[last_first + 1]["t"])
        assert abs(switch_s - truth.switch_s[name]) <= 0.5, (name, switch_s, emotions)
    assert (out / "timeline.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "## Tracks (all 2, longest on screen first)" in md


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_report_is_written_when_a_signal_ends_the_run(sig, tmp_path, faces_dir, detector_dir):
    from edge_runtime_helpers import scene_video, signal_after_lines

    path = tmp_path / "long.mp4"
    truth, _ = scene_video(path, faces_dir, n_frames=150, size=(640, 480), face_px=(200, 240), seed=4)
    out = tmp_path / "session"
    env = {**os.environ, "FER_EDGE_MODEL_DIR": str(detector_dir), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--source", str(path.parent / truth.video),
                             "--headless", "--report", str(out), "--max-fps", "5", "--model", str(EMOTION_MODEL)],
                            cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jsonl = out / "run.jsonl"
    stdout, stderr = signal_after_lines(proc, jsonl, sig, timeout_s=120)
    assert proc.returncode == 0, stderr[-2000:]
    assert stdout == ""  # with --report, the JSONL goes to DIR/run.jsonl, not stdout
    frames = len(jsonl.read_text().splitlines())
    assert 5 <= frames < 150, "the run should have been stopped mid-video"
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "report.md", "run.jsonl", "summary.csv",
                                                     "timeline.png"]
    assert f"report: {frames} frames" in stderr and "Traceback" not in stderr
    assert f"{frames:,} frames" in (out / "report.md").read_text()
    assert len(_rows(out / "summary.csv")) >= 1
