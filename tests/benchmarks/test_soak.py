"""benchmarks/soak.py: a small soak produces RSS growth numbers and a plot."""

from __future__ import annotations

import json

import pytest

from benchmarks import soak
from benchmarks.classifier import load_private_test
from benchmarks.pipeline import BenchConfig
from benchmarks.scenes import make_scene_video


def test_small_soak(fer_dir, tmp_path):
    crops, labels = load_private_test(fer_dir, limit=8)
    truth = make_scene_video(tmp_path / "v.mp4", crops, labels, n_frames=10, size=(320, 240), faces_per_frame=1,
                             face_px=(100, 120), seed=1)
    report = soak.run_soak(BenchConfig(source=str(tmp_path / truth.video), frames=40, warmup=2), progress=False)
    assert report["kind"] == "soak" and report["frames"] == 40
    for key in ("rss_growth_mb", "rss_slope_mb_per_1k_frames", "rss_first_mb", "rss_last_mb", "rss_peak_mb"):
        assert isinstance(report[key], float)
    assert report["rss_peak_mb"] >= report["rss_last_mb"] > 0
    paths = soak.write_outputs(report, tmp_path / "soak.json")
    assert "rss_growth_mb" in json.loads(paths["json"].read_text())
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
    assert "RSS growth" in paths["markdown"].read_text()


@pytest.mark.parametrize("rss, growth", [
    ([100.0] * 50, 0.0),
    ([100.0] * 10 + [130.0] * 10, 30.0),
    (list(range(100, 200)), 90.0),  # medians of the first and last ten
])
def test_rss_growth(rss, growth):
    assert soak.rss_growth(rss)["rss_growth_mb"] == pytest.approx(growth)
