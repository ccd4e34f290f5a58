"""benchmarks.photos.videos: benchmark videos made of labelled photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.photos.videos import VIDEOS, main, make_all


@pytest.fixture
def photo_folder(tmp_path, faces_dir) -> Path:
    """A labelled folder of 350x350 photos (the committed faces, enlarged), plus one thumbnail."""
    root = tmp_path / "photos"
    for src in sorted(faces_dir.glob("*/*.jpg"))[:12]:
        (root / src.parent.name).mkdir(parents=True, exist_ok=True)
        gray = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(root / src.parent.name / src.name), cv2.resize(gray, (350, 350), interpolation=cv2.INTER_CUBIC))
    cv2.imwrite(str(root / "happy" / "thumbnail.jpg"), np.full((60, 60), 128, np.uint8))
    return root


def test_every_video_has_its_size_frames_and_photos_in_place(photo_folder, tmp_path):
    paths = make_all(photo_folder, tmp_path / "out", n_frames=6, seed=3)
    assert [p.stem for p in paths] == [v.name for v in VIDEOS]
    for path, video in zip(paths, VIDEOS):
        info = json.loads(path.with_suffix(".json").read_text())
        assert len(info["photos"]) == len(info["photo_boxes_first_frame"]) == video.photos
        assert not any(p.endswith("thumbnail.jpg") for p in info["photos"])  # too small to enlarge
        cap = cv2.VideoCapture(str(path))
        frames = []
        while (ok_frame := cap.read())[0]:
            frames.append(ok_frame[1])
        cap.release()
        w, h = video.size
        assert len(frames) == 6 and frames[0].shape == (h, w, 3)
        assert not np.array_equal(frames[0], frames[3])  # the photos move
        for x0, y0, x1, y1 in info["photo_boxes_first_frame"]:
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert video.side_px[0] <= x1 - x0 <= int(video.side_px[1] * 1.08) + 1
            photo = frames[0][y0:y1, x0:x1].astype(np.float32)
            assert photo.std() > 2 * frames[0][:, :].astype(np.float32)[:8, :8].std()  # a face, not the blurred fill


def test_cli_refuses_a_folder_without_enough_large_photos(tmp_path, capsys):
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.jpg"), np.zeros((350, 350, 3), np.uint8))
    assert main(["--photos", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "at least 300 px" in capsys.readouterr().err
