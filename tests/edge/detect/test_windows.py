"""edge/detect/windows.py: the short-range network on windows of a frame, one interpreter per input shape."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.scenes.synthetic import make_scene_image
from edge.detect.blazeface import logit
from edge.detect.windows import MAX_SHAPES, WindowNets, coarse_window
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
