"""edge.capture.source: what `--source` names, and the errors that say what to pass instead."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from capture_helpers import write_video  # tests/edge/capture/, on the path as this test's folder

from edge.capture.source import SourceError, parse_source


def test_parse_source_kinds(tmp_path):
    video = write_video(tmp_path / "v.avi", 2)
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    cases = {
        "0": "camera", "2": "camera", "picamera2": "picamera2",
        "rtsp://127.0.0.1:8554/cam": "url", "http://127.0.0.1/x.mjpg": "url",
        str(video): "video", str(img): "image", str(tmp_path): "folder", str(tmp_path / "*.png"): "folder",
    }
    for text, kind in cases.items():
        assert parse_source(text).kind == kind, text
    assert parse_source(str(tmp_path)).paths == (str(img),)
    assert parse_source("0").live and parse_source("picamera2").live and not parse_source(str(video)).live


@pytest.mark.parametrize("text, words", [
    ("no/such/file.mp4", "file not found: no/such/file.mp4"),
    ("{tmp}/empty_dir", "no images"),
    ("{tmp}/*.nothing", "matches no images"),
    ("{tmp}/nested", "only in its sub-folders; pass a quoted glob"),
])
def test_parse_source_rejects_with_a_clear_message(tmp_path, text, words):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "nested" / "2024" / "june").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "nested" / "2024" / "june" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match=words):
        parse_source(text.format(tmp=tmp_path))


@pytest.mark.parametrize("suffix", [".jpg", ".tiff", ".PNG"])
def test_the_globs_that_the_nested_folder_error_suggests_find_its_images(tmp_path, suffix):
    for sub in ("a", "b/c"):
        (tmp_path / sub).mkdir(parents=True)
        assert cv2.imwrite(str(tmp_path / sub / f"x{suffix}"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError) as err:
        parse_source(str(tmp_path))
    suggested = str(err.value).split("'")[1::2]  # the quoted globs: this type, and every type
    assert suggested == [str(tmp_path / "**" / f"*{suffix}"), str(tmp_path / "**" / "*")], str(err.value)
    for glob_text in suggested:
        spec = parse_source(glob_text)
        assert spec.kind == "folder" and [Path(q).relative_to(tmp_path).as_posix() for q in spec.paths] == \
            [f"a/x{suffix}", f"b/c/x{suffix}"]
