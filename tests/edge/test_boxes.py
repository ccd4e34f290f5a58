"""edge.boxes: the one home of box geometry (IoU, matching, weighted NMS)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.boxes import iou_matrix, match_boxes, weighted_nms


def box(x: float, y: float, s: float = 100) -> list[float]:
    return [x, y, x + s, y + s]


@pytest.mark.parametrize("a, b, expected", [
    (box(0, 0), box(0, 0), 1.0),
    (box(0, 0), box(50, 0), 1 / 3),
    (box(0, 0), box(200, 200), 0.0),
    ([0, 0, 10, 10], [0, 0, 0, 0], 0.0),  # degenerate box: no division by zero
])
def test_iou_matrix(a, b, expected):
    for dtype in (np.float32, np.int32, np.float64):
        got = iou_matrix(np.asarray([a], dtype), np.asarray([b], dtype))
        assert got.shape == (1, 1)
        assert got[0, 0] == pytest.approx(expected, abs=1e-6)


def test_iou_matrix_shapes_and_empty():
    a = np.asarray([box(0, 0), box(300, 0)])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)
    m = iou_matrix(a, a[::-1])
    assert m.shape == (2, 2) and m[0, 1] == 1.0 and m[0, 0] == 0.0


def test_match_boxes_is_one_to_one_best_first():
    truth = np.asarray([box(0, 0), box(500, 0)])
    # Two detections on the first face (the better one must win), one on nothing.
    det = np.asarray([box(30, 0), box(5, 0), box(900, 900)])
    ti, di, ious = match_boxes(truth, det, 0.3)
    assert ti.tolist() == [0] and di.tolist() == [1]
    assert ious[0] == pytest.approx(iou_matrix(truth[:1], det[1:2])[0, 0])
    # Below the threshold nothing matches.
    assert len(match_boxes(truth, det, 0.99)[0]) == 0
    assert len(match_boxes(np.zeros((0, 4)), det, 0.3)[0]) == 0


def test_weighted_nms_averages_clusters_by_score():
    boxes = np.asarray([box(0, 0), box(10, 0), box(400, 0)], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    kps[:, :, 0] = boxes[:, :1]
    scores = np.asarray([0.9, 0.3, 0.8], np.float32)
    out, out_kps, out_scores = weighted_nms(boxes, kps, scores, 0.3)
    assert out_scores.tolist() == pytest.approx([0.9, 0.8])
    assert out[0, 0] == pytest.approx(10 * 0.3 / 1.2)  # weighted mean of x1 = 0 and 10
    assert out_kps[0, 0, 0] == pytest.approx(out[0, 0])
    assert out[1].tolist() == pytest.approx(box(400, 0))
    empty = weighted_nms(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32), 0.3)
    assert [a.shape for a in empty] == [(0, 4), (0, 6, 2), (0,)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("score", [0.41, 0.5, 0.9999])
def test_weighted_nms_of_one_detection_is_that_detection(dtype, score):
    """One detection is one cluster: its own box and keypoints (a weighted mean of one, float32),
    and its score; the shapes a window's many detections give."""
    box = np.array([[10.25, 20.5, 110.75, 140.125]], dtype)
    keypoints = np.arange(12, dtype=dtype).reshape(1, 6, 2) * 7.5 + 30.0
    boxes, kps, scores = weighted_nms(box, keypoints, np.array([score], dtype), 0.3)
    assert boxes.shape == (1, 4) and kps.shape == (1, 6, 2) and scores.shape == (1,)
    assert boxes.dtype == kps.dtype == scores.dtype == np.float32
    np.testing.assert_allclose(boxes, box, rtol=1e-6)
    np.testing.assert_allclose(kps, keypoints, rtol=1e-6)
    assert scores[0] == np.float32(score)
    # The same detection twice, far apart from nothing else, gives the same as once.
    two = weighted_nms(np.repeat(box, 2, axis=0), np.repeat(keypoints, 2, axis=0), np.array([score] * 2, dtype), 0.3)
    np.testing.assert_allclose(two[0], boxes, rtol=1e-6)
    np.testing.assert_allclose(two[1], kps, rtol=1e-6)


def _random_boxes(rng: np.random.Generator, n: int, dtype) -> np.ndarray:
    """n xyxy boxes, some degenerate (negative sides), some repeated, some on whole pixels."""
    xy = rng.uniform(-50, 500, (n, 2))
    wh = rng.uniform(-20, 200, (n, 2))
    if rng.random() < 0.3:
        wh = np.round(wh)
    out = np.concatenate([xy, xy + wh], axis=1)
    if n > 1 and rng.random() < 0.3:
        out[0] = out[1]
    return out.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("n, m", [(1, 1), (1, 3), (3, 1), (2, 2), (4, 4), (0, 3), (3, 0)])
def test_few_boxes_take_the_python_path_with_the_same_values(monkeypatch, dtype, n, m):
    """A few pairs are computed with Python floats (a frame's usual one to four faces); the values
    and the matches must be those of the numpy path to the last bit."""
    import edge.boxes as boxes

    rng = np.random.default_rng(n * 10 + m)
    cases = [(_random_boxes(rng, n, dtype), _random_boxes(rng, m, dtype)) for _ in range(300)]
    few = [(iou_matrix(a, b), *match_boxes(a, b, 0.3)) for a, b in cases]
    monkeypatch.setattr(boxes, "_FEW_PAIRS", -1)  # every case through numpy
    for (a, b), got in zip(cases, few):
        for g, want in zip(got, (iou_matrix(a, b), *match_boxes(a, b, 0.3))):
            assert g.dtype == want.dtype and g.shape == want.shape
            np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("score, min_score, pairs", [
    ([[0.5, 0.5], [0.5, 0.5]], 0.3, ([0, 1], [0, 1])),  # ties: the first in row-major order first
    ([[0.2, 0.9], [0.8, 0.1]], 0.3, ([0, 1], [1, 0])),
    ([[np.nan, 0.9], [0.8, 0.1]], 0.3, ([0, 1], [1, 0])),  # NaN sorted last
    ([[0.2, 0.25]], 0.3, ([], [])),  # none reaches the minimum
    ([[0.3, 0.1]], 0.3, ([0], [0])),  # the minimum itself pairs
    (np.float32([[0.7]]), 0.7, ([0], [0])),  # compared in float32, where it is the minimum (in float64, less)
])
def test_greedy_pairs(score, min_score, pairs):
    from edge.boxes import greedy_pairs

    ai, bi = greedy_pairs(np.asarray(score), min_score)
    assert (ai.tolist(), bi.tolist()) == pairs
    assert ai.dtype == bi.dtype == np.int64


@pytest.mark.parametrize("k", [1, 2, 5, 12, 16])
def test_weighted_nms_of_a_few_detections_equals_the_matrix_path(monkeypatch, k):
    """Up to _FEW_PAIRS detections, each cluster needs only its best detection's IoU row; the
    clusters and their means must be those of the whole-matrix path to the last bit."""
    import edge.boxes as boxes

    rng = np.random.default_rng(k)
    cases = []
    for _ in range(200):
        centres = rng.uniform(0, 400, (int(rng.integers(1, 4)), 2))
        c = centres[rng.integers(0, len(centres), k)] + rng.normal(0, 6, (k, 2))
        side = rng.uniform(20, 80, (k, 1))
        cases.append((np.concatenate([c - side / 2, c + side / 2], 1).astype(np.float32),
                      rng.uniform(0, 400, (k, 6, 2)).astype(np.float32),
                      np.round(rng.uniform(0.3, 1.0, k), 2).astype(np.float32)))
    few = [weighted_nms(b, kp, s, 0.3) for b, kp, s in cases]
    monkeypatch.setattr(boxes, "_FEW_PAIRS", -1)
    for (b, kp, s), got in zip(cases, few):
        for g, want in zip(got, weighted_nms(b, kp, s, 0.3)):
            assert g.dtype == want.dtype
            np.testing.assert_array_equal(g, want)
