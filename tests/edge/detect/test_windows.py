"""edge/detect/windows.py: the short-range network on windows of a frame, one interpreter per input shape."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from benchmarks.scenes.synthetic import make_background, make_scene_image, paste_face
from edge.boxes import iou_matrix
from edge.detect.blazeface import logit
from edge.detect.windows import MAX_SHAPES, FrameLevels, Window, WindowNets, coarse_window, roi_window
from edge_runtime_helpers import fer_faces

SHORT = "blaze_face_short_range.tflite"


@pytest.fixture(scope="module")
def photo(faces_dir):
    """A 640x480 room with one 200 px face."""
    images, labels = fer_faces(faces_dir, per_class=1)
    image, _ = make_scene_image(images[3:4], labels[3:4], size=(640, 480), faces_per_frame=1,
                                face_px=(200, 200), seed=3, background="room")
    return image


@pytest.mark.parametrize("n_sizes", [1, MAX_SHAPES, MAX_SHAPES + 1, 3 * MAX_SHAPES])
def test_interpreters_held_stay_bounded_over_many_photo_sizes(detector_dir, photo, n_sizes):
    """A folder of photos of many sizes asks for many window shapes; the nets held stay bounded,
    and a shape rebuilt after it was let go gives the same detections as before."""
    nets = WindowNets(str(detector_dir / SHORT), num_threads=1)
    try:
        first = nets.run(photo, coarse_window(*photo.shape[:2], size=128), logit(0.5))
        boxes, _, scores = first
        assert len(scores) == 1
        for k in range(n_sizes):
            side = 144 + 16 * k  # multiples of the network's stride, as the tiled scan asks for
            nets.run(photo, coarse_window(*photo.shape[:2], size=side), logit(0.5))
            assert len(nets.shapes) <= MAX_SHAPES
        assert nets.shapes[-1] == (144 + 16 * (n_sizes - 1),) * 2  # the latest is kept
        again = nets.run(photo, coarse_window(*photo.shape[:2], size=128), logit(0.5))
        np.testing.assert_array_equal(again[0], boxes)
        np.testing.assert_array_equal(again[2], scores)
    finally:
        nets.close()


@pytest.mark.parametrize("height, width", [(1080, 1920), (1079, 1919), (351, 350), (3, 5)])
def test_each_level_is_the_frame_in_blocks_of_its_means(height, width):
    """Level k holds the means of 2**k x 2**k blocks (an odd last row or column dropped), each
    halving rounding by at most half a gray level."""
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (0, 0), 2)
    levels = FrameLevels(image)
    assert levels.level(0) is image
    for k in range(1, FrameLevels.MAX_LEVEL + 1):
        f, h, w = 1 << k, height >> k, width >> k
        if min(h, w) == 0:
            break
        means = image[:h * f, :w * f].astype(np.float32).reshape(h, f, w, f, 3).mean(axis=(1, 3))
        assert levels.level(k).shape == (h, w, 3)
        assert np.abs(levels.level(k).astype(np.float32) - means).max() <= 0.5 * k + 1e-6


@pytest.mark.parametrize("scale, level", [(2.0, 0), (1.0, 0), (0.6, 0), (0.5, 1), (0.3, 1), (0.25, 2), (0.07, 3),
                                          (0.01, FrameLevels.MAX_LEVEL)])
def test_a_window_starts_from_the_smallest_level_it_still_shrinks(scale, level):
    assert FrameLevels(np.zeros((1080, 1920, 3), np.uint8)).level_for(scale) == level


@pytest.fixture(scope="module")
def edge_face_frame(faces_dir):
    """A 1919x1079 room (odd sides) with a 540 px face 6 px from its right edge, and its box."""
    images, _ = fer_faces(faces_dir, per_class=1)
    image = make_background("room", (1919, 1079), np.random.default_rng(5))
    box = (1919 - 6 - 540, 400, 1919 - 6, 940)
    paste_face(image, images[3], box, feather=0.0)
    return image, np.array(box, np.float32)


@pytest.mark.parametrize("window", ["coarse", "roi at 72 px", "roi at 48 px", "tile at 0.25"])
def test_a_window_finds_the_same_face_from_a_level_as_from_the_frame(detector_dir, edge_face_frame, monkeypatch, window):
    """Area resampling of a halving gives the network the same face as area resampling of the
    frame itself, also at the frame's right edge, where a level drops the odd last column (the
    window's edge there is the frame's, so the face is not taken as cut by it)."""
    image, box = edge_face_frame
    win = {"coarse": coarse_window(*image.shape[:2]), "roi at 72 px": roi_window(box, 72),
           "roi at 48 px": roi_window(box, 48),
           "tile at 0.25": Window(x=1919 - 384 / 0.25, y=0.0, scale=0.25, height=384, width=384, kind="tile")}[window]
    nets = WindowNets(str(detector_dir / SHORT), num_threads=1)
    try:
        levels = FrameLevels(image)
        assert levels.level_for(win.scale) >= 1  # the case under test: the window starts from a halving
        got = nets.run(levels, win, logit(0.5))
        monkeypatch.setattr(FrameLevels, "MAX_LEVEL", 0)  # every window from the frame itself
        direct = nets.run(image, win, logit(0.5))
    finally:
        nets.close()
    for boxes, _, scores in (got, direct):
        assert len(scores) == 1 and iou_matrix(boxes, box[None])[0, 0] > 0.5
    side = float(box[2] - box[0])
    assert np.abs(got[0] - direct[0]).max() <= 0.03 * side
    assert abs(float(got[2][0]) - float(direct[2][0])) <= 0.05
