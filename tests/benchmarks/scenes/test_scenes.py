"""benchmarks/scenes/accuracy.py: the scene benchmark on a few short synthetic videos."""

from __future__ import annotations

import pytest

from benchmarks.scenes.accuracy import run_scene_benchmark, scene_markdown, summary_rows, write_scene_report
from edge.pipeline import PipelineConfig


@pytest.fixture(scope="module")
def faces(fer_data):
    split = fer_data.private
    return split.images[:64], split.labels[:64]


def test_scene_benchmark_report_is_well_formed(tmp_path, faces, emotion_model):
    images, labels = faces
    report = run_scene_benchmark(out=tmp_path, n_videos=2, n_frames=5, faces=(images, labels),
                                 pipeline=PipelineConfig(emotion_model=str(emotion_model)), size=(480, 360), faces_per_frame=(1, 2),
                                 face_px=(70, 200), seed=2)
    d = report["detection"]
    assert d["placed"] == d["tp"] + d["fn"] > 0
    assert d["tp"] > 0, "faces of 150+ px are found"
    for v in (d["recall"], d["precision"], d["mean_iou"]):
        assert 0.0 <= v <= 1.0
    assert d["mean_iou"] >= d["iou_threshold"]
    assert sum(b["placed"] for b in d["recall_by_size"]) == d["placed"]
    for mode in ("smooth_off", "smooth_on"):
        r = report[mode]
        assert r["matched"] == d["tp"]
        for k in ("accuracy", "agreement", "crop_accuracy", "oracle_accuracy"):
            assert 0.0 <= r[k] <= 1.0
        assert r["flips"] >= 0 and r["flips_per_track_s"] >= 0 and r["tracks"] >= 1
        assert r["track_seconds"] == pytest.approx(r["matched"] / report["settings"]["fps"])
    assert report["smooth_off"]["crop_accuracy"] == report["smooth_on"]["crop_accuracy"]
    a = report["all_placed"]
    assert a["n"] == d["placed"] and 0.0 <= a["oracle_agreement"] <= 1.0
    assert set(report["targets"]) == {"accuracy_gap_points", "accuracy_within_2_points", "flip_reduction",
                                      "flips_reduced_3x"}
    paths = write_scene_report(report, tmp_path, command="test")
    assert {"json", "md"} <= set(paths) and "detection recall" in paths["md"].read_text()
    assert len(list((tmp_path / "videos").glob("scene_*.truth.jsonl"))) == 2
    assert "| synthetic scenes" in summary_rows(report)[0] and "Recall by placed" in scene_markdown(report)
