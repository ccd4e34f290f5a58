"""`fer-edge bench threshold`: face-free videos, the per-threshold measurement and the choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.scenes.threshold import (NEGATIVE_KINDS, chromium_fake_camera, choose_threshold, markdown,
                                         negative_frames, run_threshold_benchmark, write_outputs)
from edge.detect.factory import DetectorConfig, make_detector
from edge.detect.frame import DEFAULT_SCORE_THRESHOLD
from edge.pipeline import PipelineConfig


@pytest.mark.parametrize("kind", NEGATIVE_KINDS)
def test_face_free_kinds_make_moving_frames_of_the_asked_size(kind):
    frames = list(negative_frames(kind, (320, 240), 5, seed=3))
    assert len(frames) == 5
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)
    assert np.abs(frames[0].astype(int) - frames[4]).mean() > 0.5  # a video, not one still
    again = list(negative_frames(kind, (320, 240), 5, seed=3))
    assert all((a == b).all() for a, b in zip(frames, again))  # deterministic given the seed


def test_choose_threshold_takes_the_lowest_that_keeps_empty_scenes_empty():
    rows = [{"threshold": t, "fp_frame_rate": fp} for t, fp in ((0.5, 0.07), (0.6, 0.015), (0.65, 0.002), (0.7, 0.0))]
    assert choose_threshold(rows, 0.005) == 0.65
    assert choose_threshold(rows, 0.0) == 0.7
    assert choose_threshold(rows[:2], 0.005) is None


def test_the_benchmark_measures_false_positives_and_recall_per_threshold(fer_data, detector_dir, tmp_path):
    public = fer_data.split("public")
    faces = (public.images[:40], public.labels[:40])
    thresholds = (0.3, 0.5, 0.7, 0.95)
    # The whole-frame pass: the network's own curve (the default scan confirms its candidates).
    report = run_threshold_benchmark(thresholds=thresholds, size=(640, 480), negative_videos=1, negative_frames_n=6,
                                     face_videos=3, face_frames=4, face_px=(120, 200), faces=faces, chromium=False,
                                     pipeline=PipelineConfig().replace(scan="frame"))
    rows = report["rows"]
    assert [r["threshold"] for r in rows] == list(thresholds)
    assert report["settings"]["face_free_frames"] == 6 * len(NEGATIVE_KINDS)
    fp = [r["fp_frame_rate"] for r in rows]
    assert all(a >= b for a, b in zip(fp, fp[1:]))  # a stricter threshold never boxes more empty frames
    assert fp[0] > 0  # colour noise looks like a face at 0.3 (measured: every frame)
    assert rows[0]["fp_frame_rate_by_kind"]["noise"] > 0
    recall = [r["recall"] for r in rows]
    assert recall[0] > 0.3 and recall[0] >= recall[-1]
    assert report["chosen"] == choose_threshold(rows, report["settings"]["max_fp_rate"])
    paths = write_outputs(report, tmp_path, "fer-edge bench threshold")
    assert paths["json"].is_file() and "| 0.30 |" in paths["md"].read_text()
    assert "(rule)" in markdown(report) or report["chosen"] is None
    # The default scan at the same thresholds: confirmation boxes no more face-free frames.
    confirmed = run_threshold_benchmark(thresholds=(0.3, 0.5), size=(640, 480), negative_videos=1,
                                        negative_frames_n=6, face_videos=1, face_frames=2, face_px=(120, 200),
                                        faces=faces, chromium=False)
    for row, plain in zip(confirmed["rows"], rows):
        assert row["fp_frame_rate"] <= plain["fp_frame_rate"]
    assert confirmed["rows"][0]["fp_frame_rate_by_kind"]["noise"] == 0


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_chromiums_fake_camera_is_not_a_face_at_the_default_threshold(detector_dir):
    frames = chromium_fake_camera(12, interval_ms=150)
    assert len(frames) == 12 and frames[0].shape == (480, 640, 3)
    assert frames[0][:, :, 1].mean() > frames[0][:, :, 2].mean()  # the green test card
    with make_detector(DetectorConfig(scan="frame", score_threshold=DEFAULT_SCORE_THRESHOLD)) as det:
        assert sum(len(det.detect(f)) for f in frames) == 0
    with make_detector(DetectorConfig(scan="frame", score_threshold=0.4)) as loose:  # what a user saw at the old 0.5 and below
        assert sum(len(loose.detect(f)) > 0 for f in frames) > 0
