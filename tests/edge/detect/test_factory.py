"""edge.detect.factory: DetectorConfig chooses the detector and its threshold; make_detector builds it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.scenes.synthetic import paste_face
from edge.detect.factory import DetectorConfig, make_detector
from edge.detect.frame import DEFAULT_SCORE_THRESHOLD, BlazeFaceDetector
from edge.detect.motion import StillCarry
from edge.detect.tiling import TILES_SCORE_THRESHOLD, TiledDetector

SHORT = "blaze_face_short_range.tflite"


@pytest.mark.parametrize("config, tiled, threshold", [
    (DetectorConfig(), True, TILES_SCORE_THRESHOLD),  # the default scan tiles
    (DetectorConfig(scan="frame"), False, DEFAULT_SCORE_THRESHOLD),
    (DetectorConfig(range="full"), False, DEFAULT_SCORE_THRESHOLD),  # auto: tiles need the short range
    (DetectorConfig(backend="mediapipe"), False, DEFAULT_SCORE_THRESHOLD),
    (DetectorConfig(scan="tiles", score_threshold=0.7), True, 0.7),  # a given threshold is the one used
    (DetectorConfig(scan="frame", score_threshold=0.4), False, 0.4),
])
def test_the_config_says_which_scan_and_threshold_the_detector_uses(detector_dir, config, tiled, threshold):
    assert config.tiled == tiled and config.threshold == threshold
    if config.backend != "blazeface" or config.range != "short":
        return
    with make_detector(replace(config, model_path=str(detector_dir / SHORT)), threads=1) as det:
        inner = det.detector
        assert isinstance(det, StillCarry) and isinstance(inner, TiledDetector if tiled else BlazeFaceDetector)
        assert inner.score_threshold == threshold


@pytest.mark.parametrize("range_, size", [("short", 128), ("full", 192)])
def test_make_detector_resolves_the_model(request, range_, size):
    request.getfixturevalue("detector_dir" if range_ == "short" else "full_detector")  # skip when not installed
    with make_detector(DetectorConfig(range=range_, scan="frame"), threads=1) as det:
        assert isinstance(det, StillCarry) and isinstance(det.detector, BlazeFaceDetector)
        assert det.detector.input_size == size
        assert len(det.detect(np.zeros((480, 640, 3), np.uint8))) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "opencv"}, "unknown detector backend"),
    ({"range": "medium"}, "unknown detector range"),
    ({"scan": "pyramid"}, "unknown scan"),
    ({"backend": "mediapipe", "range": "full"}, "only the short-range model"),
    ({"range": "full", "scan": "tiles"}, "tiles run the short-range model"),
])
def test_make_detector_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_detector(DetectorConfig(**kwargs))


def _still_and_textured(faces, size):
    """A frame with one sure face, and the same frame under a 2x2 checkerboard of +-12 gray levels:
    the same to the still-frame test (its 8x8-mean thumbnail does not change), not to the network."""
    images, _ = faces
    w, h = size
    still = np.full((h, w, 3), 140, np.uint8)
    side = h // 2  # large enough for one whole-frame pass
    x, y = (w - side) // 2, (h - side) // 2
    paste_face(still, images[9], (x, y, x + side, y + side))
    checker = np.where((np.indices((h, w)).sum(axis=0) % 2) == 0, 12, -12)[..., None]
    textured = np.clip(still.astype(np.int16) + checker, 0, 255).astype(np.uint8)
    return still, textured


@pytest.mark.parametrize("scan", ["frame", "auto", "tiles"])
@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
@pytest.mark.parametrize("reset", [True, False])
def test_after_reset_no_carried_face_survives(detector_dir, faces, scan, size, reset):
    """reset() starts a new, unrelated stream: the next frame gets what a new detector finds on it,
    never the faces carried from before (without the reset, a still-looking frame keeps them)."""
    still, textured = _still_and_textured(faces, size)
    config = DetectorConfig(model_path=str(detector_dir / SHORT), scan=scan)
    with make_detector(config, threads=1) as fresh:
        want = fresh.detect(textured)
    with make_detector(config, threads=1) as det:
        before = det.detect(still)
        det.detect(still)
        assert len(before) == 1 and det.carried_last_frame  # a sure face, carried on a still frame
        assert not np.array_equal(want.score, before.score)  # the network tells the two frames apart
        if reset:
            det.reset()
        got = det.detect(textured)
    expected = want if reset else before
    np.testing.assert_array_equal(got.xyxy, expected.xyxy)
    np.testing.assert_array_equal(got.score, expected.score)
    np.testing.assert_array_equal(got.keypoints, expected.keypoints)
