"""benchmarks/speed/soak.py: the loop of `fer-edge run` over many frames, RSS growth and slope, outputs."""

from __future__ import annotations

import json

import cv2
import pytest

from benchmarks.speed import soak
from benchmarks.speed.pipeline import BenchConfig, BenchError
from benchmarks.scenes.synthetic import make_scene_video


@pytest.fixture(scope="module")
def short_video(face_crops, tmp_path_factory):
    crops, labels = face_crops
    folder = tmp_path_factory.mktemp("soak-video")
    truth = make_scene_video(folder / "v.mp4", crops, labels, n_frames=10, size=(320, 240), faces_per_frame=1,
                             face_px=(100, 120), seed=1)
    return folder / truth.video


def test_small_soak_runs_the_run_loop_over_a_looped_copy(short_video, detector_dir, tmp_path, capsys):
    jsonl = tmp_path / "soak.jsonl"
    report = soak.run_soak(BenchConfig(source=str(short_video), frames=30, warmup=5), progress=False,
                           jsonl=str(jsonl))
    # 35 frames from a 10-frame video: `fer-edge run` played a looped copy, every frame through its sinks.
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(35))
    assert "frames 35 " in capsys.readouterr().err  # the run's own summary, as `fer-edge run` prints it
    assert report["kind"] == "soak" and report["frames"] == 30 and report["warmup"] == 5
    assert report["resolution"] == [320, 240] and not report["interrupted"]
    for key in ("rss_growth_mb", "rss_slope_mb_per_10k_frames", "rss_first_mb", "rss_last_mb", "rss_peak_mb"):
        assert isinstance(report[key], float)
    assert report["rss_peak_mb"] >= report["rss_last_mb"] > 0
    assert report["latency_ms"]["frames"] == 35 and report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0
    paths = soak.write_outputs(report, tmp_path / "soak.json")
    data = json.loads(paths["json"].read_text())
    assert "rss_slope_mb_per_10k_frames" in data and not any(k.startswith("_") for k in data)
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    assert "per 10,000 frames" in paths["markdown"].read_text()


def test_looped_copy_has_the_frames_asked_for(short_video, tmp_path):
    out = soak.looped_copy(str(short_video), 25, tmp_path)
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 25


def test_soak_errors(tmp_path):
    with pytest.raises(BenchError, match="no such video"):
        soak.run_soak(BenchConfig(source=str(tmp_path / "nope.mp4"), frames=5), progress=False)
    with pytest.raises(BenchError, match="--frames"):
        soak.run_soak(BenchConfig(source="x.mp4", frames=5, duration_s=3.0), progress=False)


@pytest.mark.parametrize("rss, growth, slope", [
    ([100.0] * 50, 0.0, 0.0),
    ([100.0] * 10 + [130.0] * 10, 30.0, None),
    (list(range(100, 200)), 90.0, 10_000.0),  # medians of the first and last ten; 1 MB per frame
])
def test_rss_growth(rss, growth, slope):
    out = soak.rss_growth(rss)
    assert out["rss_growth_mb"] == pytest.approx(growth)
    if slope is not None:
        assert out["rss_slope_mb_per_10k_frames"] == pytest.approx(slope, abs=1e-6)
