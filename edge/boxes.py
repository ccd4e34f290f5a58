"""Box geometry, in one place: IoU, greedy one-to-one matching and MediaPipe's weighted NMS.

Boxes are xyxy rows, (n, 4), in any float or integer dtype and any consistent unit (frame
pixels, normalised coordinates). The detector merges detections with `weighted_nms` (within one
network pass and across tiles), the tracker matches detections to tracks with `match_boxes`, and
the benchmarks match detections to ground truth with the same function.
"""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of xyxy boxes a (n, 4) and b (m, 4) -> (n, m) float64.

    Degenerate boxes (zero or negative width or height) have IoU 0 with everything.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if len(a) * len(b) <= _FEW_PAIRS:
        return _iou_few(a.tolist(), b.tolist())
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    # np.maximum rather than np.clip: the same values, without clip's dispatch, which costs more
    # than the arithmetic on the few boxes of a frame (this runs several times per frame).
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


# Up to this many pairs, Python floats beat numpy's per-call dispatch (the usual frame: one to a
# few faces against as many tracks, several times per frame, on the thread that holds the GIL).
_FEW_PAIRS = 16


def _iou_few(a: list, b: list) -> np.ndarray:
    """iou_matrix of a few boxes (lists of 4 floats): the same float64 operations in the same
    order, so the same values to the last bit."""
    area_b = [max(x1 - x0, 0.0) * max(y1 - y0, 0.0) for x0, y0, x1, y1 in b]
    rows = []
    for ax0, ay0, ax1, ay1 in a:
        area_a = max(ax1 - ax0, 0.0) * max(ay1 - ay0, 0.0)
        row = []
        for (bx0, by0, bx1, by1), ab in zip(b, area_b):
            inter = max(min(ax1, bx1) - max(ax0, bx0), 0.0) * max(min(ay1, by1) - max(ay0, by0), 0.0)
            union = area_a + ab - inter
            row.append(inter / union if union > 0 else 0.0)
        rows.append(row)
    return np.array(rows, np.float64).reshape(len(a), len(b))


def match_boxes(a_xyxy: np.ndarray, b_xyxy: np.ndarray, iou_threshold: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy one-to-one matching, highest IoU first; pairs need IoU >= iou_threshold.

    Returns (a_index (k,), b_index (k,), iou (k,)). With a handful of boxes per frame this
    equals the optimal assignment in practice and needs no solver.
    """
    m = iou_matrix(a_xyxy, b_xyxy)
    ai, bi = greedy_pairs(m, iou_threshold)
    return ai, bi, m[ai, bi]


def greedy_pairs(score: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one pairs (row index (k,), column index (k,)) of an (n, m) score matrix,
    highest score first; pairs need score >= min_score."""
    ai, bi = [], []
    if score.size:
        cols = score.shape[1]
        # numpy orders (NaN last) and compares (in the scores' own dtype); Python walks the few
        # pairs, which numpy's per-element indexing made the slow part.
        below = (score < min_score).ravel().tolist()
        used_a, used_b = set(), set()
        for k in np.argsort(-score, axis=None, kind="stable").tolist():
            if below[k]:
                break
            i, j = divmod(k, cols)
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            ai.append(i)
            bi.append(j)
    return np.array(ai, np.int64), np.array(bi, np.int64)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Repeatedly take the best remaining detection; every remaining detection overlapping it by
    IoU > iou_threshold (itself included) joins its cluster; the output box and keypoints are
    the score-weighted mean of the cluster, the output score is the best one's score.
    boxes (k, 4), keypoints (k, K, 2), scores (k,) -> the same, one row per cluster, best first.
    """
    if len(scores) == 0:
        return (np.zeros((0, 4), np.float32), np.zeros((0, *keypoints.shape[1:]), np.float32),
                np.zeros((0,), np.float32))
    if len(scores) == 1:  # the usual case of a window: one cluster, the same arithmetic as below
        total = scores.sum()
        return (((boxes * scores[:, None]).sum(axis=0) / total)[None].astype(np.float32),
                ((keypoints * scores[:, None, None]).sum(axis=0) / total)[None].astype(np.float32),
                np.asarray(scores, np.float32).reshape(1))
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    # A few detections (a window's anchors on one face, one cluster) need only the IoU rows of
    # the clusters' best ones; many need the whole matrix at once. The same values either way.
    iou = iou_matrix(boxes, boxes) if len(scores) > _FEW_PAIRS else None
    remaining = np.ones(len(scores), bool)
    out_boxes, out_kps, out_scores = [], [], []
    while remaining.any():
        best = int(np.argmax(remaining))  # sorted: the first remaining is the best
        row = iou[best] if iou is not None else iou_matrix(boxes[best:best + 1], boxes)[0]
        members = remaining & (row > iou_threshold)
        members[best] = True
        weights = scores[members]
        total = weights.sum()
        out_boxes.append((boxes[members] * weights[:, None]).sum(axis=0) / total)
        out_kps.append((keypoints[members] * weights[:, None, None]).sum(axis=0) / total)
        out_scores.append(scores[best])
        remaining &= ~members
    return (np.stack(out_boxes).astype(np.float32), np.stack(out_kps).astype(np.float32),
            np.asarray(out_scores, np.float32))
