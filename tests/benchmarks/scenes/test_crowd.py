"""benchmarks/scenes/crowd.py: group scenes whose truth lines up with the pixels, and the one-table report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.scenes.crowd import (BANDS, band_of, crowd_markdown, make_group_video, run_crowd_benchmark,
                                     tile_edges, write_crowd_report)
from benchmarks.scenes.synthetic import read_truth, upscale_face
from edge.boxes import iou_matrix
from edge.capture.readers import read_video_frames
from edge.pipeline import PipelineConfig


@pytest.fixture(scope="module")
def faces(fer_data):
    split = fer_data.private
    return split.images[:80], split.labels[:80]


@pytest.fixture(scope="module")
def group(tmp_path_factory, faces):
    images, labels = faces
    out = tmp_path_factory.mktemp("group")
    truth = make_group_video(out / "group.mp4", images, labels, size=(1920, 1080), n_faces=(12, 12),
                             n_frames=12, seed=11, occluded_frac=0.4, border_frac=0.4, late_frac=0.4)
    return out / truth.video, truth, read_video_frames(out / truth.video)


def _corr(a, b) -> float:
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def test_truth_file_round_trips_and_faces_are_where_it_says(group, faces):
    path, truth, frames = group
    images, _ = faces
    assert read_truth(path) == truth
    assert len(frames) == truth.n_frames == 12
    assert frames[0].shape == (1080, 1920, 3)
    last = truth.frames[-1]
    assert len(last) == 12
    for f in last:
        side = f.box[2] - f.box[0]
        assert f.box[3] - f.box[1] == side and 32 <= side <= 160
        assert 0 <= f.box[0] and f.box[2] <= 1920 and 0 <= f.box[1] and f.box[3] <= 1080
        if f.occluded:
            continue  # part of the square is covered on purpose
        x1, y1, x2, y2 = f.box
        m = max(2, side // 6)  # the codec blurs the edges
        got = frames[-1][y1 + m:y2 - m, x1 + m:x2 - m].mean(axis=2)
        want = upscale_face(images[f.src], side)[m:side - m, m:side - m]
        assert _corr(got, want) > 0.8, (f.id, side)
    boxes = np.asarray([f.box for f in last])
    assert (iou_matrix(boxes, boxes) - np.eye(len(boxes))).max() == 0  # faces never overlap


def test_sizes_occluders_borders_and_late_faces(group):
    _, truth, frames = group
    last = truth.frames[-1]
    assert any(f.occluded for f in last) and any(f.border for f in last)
    for f in last:
        if f.occluded:
            assert 0.2 <= f.occluded <= 0.4
    xs, ys = tile_edges((1920, 1080))
    for f in last:
        if f.border:  # some default tile edge runs through the square
            x1, y1, x2, y2 = f.box
            assert any(x1 < x < x2 for x in xs) or any(y1 < y < y2 for y in ys), f
    appear = {int(k): v for k, v in truth.meta["appear"].items()}
    late = [k for k, v in appear.items() if v > 0]
    assert late, "some faces should appear later"
    for i, placed in enumerate(truth.frames):
        present = {f.id for f in placed}
        assert present == {k for k, v in appear.items() if v <= i}
    # A late face's square shows background before it appears and the face after.
    k = late[0]
    first = appear[k]
    box = next(f.box for f in truth.frames[-1] if f.id == k)
    x1, y1, x2, y2 = box
    before = frames[first - 1][y1:y2, x1:x2].astype(np.float64)
    after = frames[first][y1:y2, x1:x2].astype(np.float64)
    assert np.abs(after - before).mean() > 5


def test_generator_is_deterministic_per_seed(tmp_path, faces):
    images, labels = faces
    a = make_group_video(tmp_path / "a.mp4", images, labels, size=(1280, 720), n_frames=3, seed=4)
    b = make_group_video(tmp_path / "b.mp4", images, labels, size=(1280, 720), n_frames=3, seed=4)
    c = make_group_video(tmp_path / "c.mp4", images, labels, size=(1280, 720), n_frames=3, seed=5)
    assert a.frames == b.frames and a.frames != c.frames
    assert 4 <= len(a.frames[-1]) <= 12


def test_band_of():
    assert [band_of(s) for s in (31, 32, 47, 48, 63, 64, 95, 96, 160, 161)] == [-1, 0, 0, 1, 1, 2, 2, 3, 3, -1]
    assert BANDS[0][0] == 32 and BANDS[-1][1] == 161


def test_crowd_benchmark_reports_every_mode_and_band(tmp_path, faces, detector_dir, emotion_model):
    modes = {"frame, short range (the default up to 960 px before)": ({"scan": "frame", "range": "short"}, False),
             "tiles, stream (the default)": ({"scan": "auto", "range": "short"}, False)}
    report = run_crowd_benchmark(out=tmp_path, sizes=((1280, 720),), videos=1, n_frames=3, modes=modes,
                                 pipeline=PipelineConfig(emotion_model=str(emotion_model)), faces=faces, n_faces=(6, 6), face_px=(48, 120))
    rows = report["table"]
    assert [r["mode"] for r in rows] == list(modes)
    for r in rows:
        assert r["placed"] == sum(b["placed"] for b in r["bands"]) > 0
        assert len(r["bands"]) == len(BANDS)
        assert r["frames"] == 3
    frame_row, tiles_row = rows
    # 48-120 px faces in 720p are below what one 128x128 pass can see; tiles find them.
    assert (tiles_row["recall"] or 0) > (frame_row["recall"] or 0)
    paths = write_crowd_report(report, tmp_path, "fer-edge bench crowd (test)")
    md = paths["md"].read_text()
    assert md == crowd_markdown(report, "fer-edge bench crowd (test)")
    assert "| 1280x720 | tiles, stream" in md and "32-47 px" in md
    assert json.loads(paths["json"].read_text())["table"][1]["mode"] == rows[1]["mode"]
