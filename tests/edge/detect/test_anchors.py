"""MediaPipe's SSD anchor layout for the two BlazeFace models."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect.anchors import FULL_RANGE, SHORT_RANGE, ssd_anchor_centres
from edge.interpreter import load_interpreter

# options, count, first centre, last centre, model file (its outputs must have `count` rows)
CASES = [
    (SHORT_RANGE, 896, (0.5 / 16, 0.5 / 16), (7.5 / 8, 7.5 / 8), "blaze_face_short_range.tflite"),
    (FULL_RANGE, 2304, (0.5 / 48, 0.5 / 48), (47.5 / 48, 47.5 / 48), "face_detection_full_range_sparse.tflite"),
]


@pytest.mark.parametrize("options, count, first, last, _", CASES)
def test_count_and_end_centres(options, count, first, last, _):
    anchors = ssd_anchor_centres(options)
    assert anchors.shape == (count, 2) and anchors.dtype == np.float32
    np.testing.assert_allclose(anchors[0], first, atol=1e-7)
    np.testing.assert_allclose(anchors[-1], last, atol=1e-7)
    assert (anchors > 0).all() and (anchors < 1).all()


def test_short_range_layout():
    anchors = ssd_anchor_centres(SHORT_RANGE)
    # Stride 8: 16x16 cells, 2 anchors per cell, x varies fastest across cells.
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[2], (1.5 / 16, 0.5 / 16), atol=1e-7)
    np.testing.assert_allclose(anchors[32], (0.5 / 16, 1.5 / 16), atol=1e-7)  # second row
    # The three stride-16 layers share one 8x8 map: 6 anchors per cell, from index 512.
    assert len(np.unique(anchors[512:518], axis=0)) == 1
    np.testing.assert_allclose(anchors[512], (0.5 / 8, 0.5 / 8), atol=1e-7)
    np.testing.assert_allclose(anchors[518], (1.5 / 8, 0.5 / 8), atol=1e-7)


@pytest.mark.parametrize("options, count, _first, _last, filename", CASES)
def test_count_matches_the_model_outputs(request, options, count, _first, _last, filename):
    path = (request.getfixturevalue("detector_dir") / filename if options is SHORT_RANGE
            else request.getfixturevalue("full_detector"))
    interp = load_interpreter(path, num_threads=1)
    shapes = sorted(tuple(d["shape"]) for d in interp.get_output_details())
    assert shapes == [(1, count, 1), (1, count, 16)]
    assert tuple(interp.get_input_details()[0]["shape"]) == (1, options.input_size, options.input_size, 3)
