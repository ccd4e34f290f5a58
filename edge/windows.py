"""Short-range BlazeFace on any window of a frame, and the second look that confirms a candidate face.

A `Window` maps input pixels to frame pixels (a zoom and an offset). `WindowNets.run(image, window)`
resamples that part of the frame into the window's input, runs the network (one interpreter per
input shape, built on first use) and returns its detections in frame pixels. The tiled scan
(edge.tiling) is made of such windows.

**The second look.** Textures, lamps and the backs of heads fire the network at 0.5-0.7 in one
view, while a real face scores high again when it is looked at on its own, zoomed to the size the
network likes best. `SecondLook.confirms(image, box)` runs two region-of-interest windows on a
candidate box, in which the candidate is 48 and 72 input px wide, and says yes when both find a
face on it at >= `verify_score`. `accept` is the rule every scan uses to turn candidates into
faces (confirmation instead of one global threshold):

- a candidate that continues a face of the last frames (a known track) is kept from `keep_score`;
- a new one is kept when it scores >= `sure_score`, or when its keypoints look like a face's (the
  eyes far enough apart for its box, `face_geometry`) and the second look confirms it; under
  `keep_score` (the caller's candidates start lower), the second look must also find it in a
  window in which it is only `SMALL_LOOK_PX` wide, the smallest face the network finds reliably.

`uncertain` marks faces turned too far for an expression label (a profile), from the keypoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.anchors import SHORT_RANGE, anchor_centres_px
from edge.boxes import iou_matrix, match_boxes, weighted_nms
from edge.interpreter import load_interpreter

ROI_INPUT_PX = 128  # region-of-interest window side, input px
# A remembered face's size in its region-of-interest window. The network scores a face highest at
# 64-80 px of its 128 px input and much lower at 48 (one occluded face: 0.49 at 48 px, 0.68 at 64).
ROI_FACE_INPUT_PX = 72
EDGE_PX = 2.0  # a box within this many input px of an inner window edge is cut by it
TRACK_IOU = 0.3  # a detection continues a remembered face (or confirms a candidate) at this IoU
SCORE_CLIP = 100.0  # as MediaPipe, logits are clipped before the sigmoid
ALIGN = 16  # the network's largest stride: input sides are multiples of it
# The second look: both windows (candidate 48 and 72 input px wide) must find the candidate at
# >= VERIFY_SCORE. On group scenes (seed 0, full scans) this cut false positives ~20x at a cost
# of ~5 % of the faces, where raising the threshold alone to the same precision lost ~20 %.
VERIFY_SCORE = 0.6
VERIFY_FACE_PX = (48, 72)
# A new candidate under the score threshold must also be found in a window in which it is this
# small: a real face is, while the text of a test card that passes both windows above is not.
SMALL_LOOK_PX = (32,)
# Only candidates at least this many frame px wide get that window: smaller real faces (a crowd's)
# have too little detail left at 32 input px, and shrinking them costs many of them.
SMALL_LOOK_MIN_PX = 64
# The cheap face check on BlazeFace's keypoints: the distance between the eyes, over the box
# width. Real faces: 0.39 or more in 99 % of the real photos (shared wild set), 0.32 or more in 98 %
# of upscaled FER-2013 crops; the clock of a green test card, which the second look confirmed,
# 0.27-0.31. A new face that needs the second look must pass this check first.
MIN_EYE_RATIO = 0.32
# A face whose nose lies this far (in eye distances) to the side of the eyes' midpoint is turned
# too far for the expression classifier (a frontal face: 0.07 at the median, 0.41 at the 99th
# percentile of the real photos): its state is "uncertain".
UNCERTAIN_YAW = 0.45


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True, slots=True)
class Window:
    """One network call: the input pixel (u, v) samples frame pixel (x + u / scale, y + v / scale)."""

    x: float  # frame px at the input's left edge
    y: float  # frame px at the input's top edge
    scale: float  # input px per frame px
    height: int  # input px, a multiple of ALIGN
    width: int
    kind: str  # coarse | tile | roi

    @property
    def pixels(self) -> int:
        return self.height * self.width


def coarse_window(height: int, width: int, size: int = SHORT_RANGE.input_size) -> Window:
    """The whole frame letterboxed (centred) into a size x size input."""
    scale = size / max(height, width)
    pad_x, pad_y = (size - width * scale) / 2.0, (size - height * scale) / 2.0
    return Window(x=-pad_x / scale, y=-pad_y / scale, scale=scale, height=size, width=size, kind="coarse")


def roi_window(box_xyxy: np.ndarray, face_input_px: float = ROI_FACE_INPUT_PX) -> Window:
    """A ROI_INPUT_PX square window centred on a face box, in which the face is face_input_px wide."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    side = max(x2 - x1, y2 - y1, 1.0)
    scale = face_input_px / side
    half = ROI_INPUT_PX / (2.0 * scale)
    return Window(x=(x1 + x2) / 2.0 - half, y=(y1 + y2) / 2.0 - half, scale=scale,
                  height=ROI_INPUT_PX, width=ROI_INPUT_PX, kind="roi")


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros((0,), np.float32)


class _Net:
    """The short-range network allocated for one input shape, with its anchors and buffers."""

    def __init__(self, model_path: str, height: int, width: int, num_threads: int | None):
        self.interp = load_interpreter(model_path, num_threads)
        inp = self.interp.get_input_details()[0]
        if inp["dtype"] != np.float32 or tuple(inp["shape"][1:]) != (128, 128, 3):
            raise ValueError(f"{model_path}: input {tuple(inp['shape'])} is not the short-range BlazeFace "
                             "input (1, 128, 128, 3) float32; tiling needs the short-range model")
        self.input_index = inp["index"]
        if (height, width) != (128, 128):
            self.interp.resize_tensor_input(self.input_index, [1, height, width, 3])
            self.interp.allocate_tensors()
        self.anchors = anchor_centres_px(SHORT_RANGE, height, width)  # (N, 2) input px
        n = self.anchors.shape[0]
        self.regressor_index = self.score_index = None
        for out in self.interp.get_output_details():
            shape = tuple(out["shape"])
            if shape == (1, n, 16):
                self.regressor_index = out["index"]
            elif shape == (1, n, 1):
                self.score_index = out["index"]
        if self.regressor_index is None or self.score_index is None:
            raise ValueError(f"{model_path}: at input {height}x{width} the outputs do not have {n} anchors")
        self.canvas = np.zeros((height, width, 3), np.uint8)  # RGB; padding stays black
        self.input = np.zeros((1, height, width, 3), np.float32)
        self.placed: tuple[int, int, int, int] | None = None  # the canvas area the last image filled


class WindowNets:
    """`boxes, keypoints, scores = nets.run(image_bgr, window, logit_threshold)`: short-range
    BlazeFace on one window, in frame px. One interpreter per input shape, built on first use; one
    object serves one thread. num_threads: interpreter threads of large windows; small_threads: of
    128x128 ones, which are too small for threads to pay off (None: as num_threads)."""

    def __init__(self, model_path: str, num_threads: int | None, iou_threshold: float = 0.3,
                 small_threads: int | None = None):
        self.model_path = str(model_path)
        self.num_threads = num_threads
        self.small_threads = num_threads if small_threads is None else small_threads
        self.iou_threshold = float(iou_threshold)
        self._nets: dict[tuple[int, int], _Net] = {}
        self.net(128, 128)  # fail now, not on the first frame, when the model is the wrong one

    def net(self, height: int, width: int) -> _Net:
        net = self._nets.get((height, width))
        if net is None:
            threads = self.small_threads if height * width <= ROI_INPUT_PX ** 2 else self.num_threads
            net = self._nets[(height, width)] = _Net(self.model_path, height, width, threads)
        return net

    def close(self) -> None:
        self._nets.clear()

    def run(self, image_bgr: np.ndarray, win: Window, logit_threshold: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw detections of one window: boxes (k, 4) and keypoints (k, 6, 2) in frame px, scores (k,)."""
        h, w = image_bgr.shape[:2]
        net = self.net(win.height, win.width)
        # The frame pixels the window covers, and where they land in the input.
        ix0, iy0 = max(int(math.ceil(win.x)), 0), max(int(math.ceil(win.y)), 0)
        ix1 = min(int(math.floor(win.x + win.width / win.scale)), w)
        iy1 = min(int(math.floor(win.y + win.height / win.scale)), h)
        u0 = max(0, int(round((ix0 - win.x) * win.scale)))
        v0 = max(0, int(round((iy0 - win.y) * win.scale)))
        u1 = min(win.width, int(round((ix1 - win.x) * win.scale)))
        v1 = min(win.height, int(round((iy1 - win.y) * win.scale)))
        if ix1 <= ix0 or iy1 <= iy0 or u1 <= u0 or v1 <= v0:
            return _empty()
        placed = (u0, v0, u1, v1)
        if net.placed != placed:
            net.canvas[:] = 0
            net.placed = placed
        region = image_bgr[iy0:iy1, ix0:ix1]
        interpolation = cv2.INTER_AREA if (u1 - u0) < (ix1 - ix0) else cv2.INTER_LINEAR
        resized = cv2.resize(region, (u1 - u0, v1 - v0), interpolation=interpolation)
        net.canvas[v0:v1, u0:u1] = resized[:, :, ::-1]  # BGR -> RGB
        np.multiply(net.canvas, 1.0 / 127.5, out=net.input[0], casting="unsafe")
        net.input -= 1.0
        interp = net.interp
        interp.set_tensor(net.input_index, net.input)
        interp.invoke()
        logits = interp.get_tensor(net.score_index)[0, :, 0]
        keep = np.flatnonzero(logits >= logit_threshold)
        if keep.size == 0:
            return _empty()
        raw = interp.get_tensor(net.regressor_index)[0, keep]  # (k, 16) input-px offsets from the anchor
        anchors = net.anchors[keep]
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] * 0.5
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        # A face cut by a window edge inside the frame is seen whole by a neighbouring window.
        cut = np.zeros(len(keep), bool)
        if win.kind != "coarse":
            if ix0 > 0:
                cut |= boxes[:, 0] <= u0 + EDGE_PX
            if iy0 > 0:
                cut |= boxes[:, 1] <= v0 + EDGE_PX
            if ix1 < w:
                cut |= boxes[:, 2] >= u1 - EDGE_PX
            if iy1 < h:
                cut |= boxes[:, 3] >= v1 - EDGE_PX
        ok = ~cut
        # Input px -> frame px, with the scale the resize really used on each axis.
        sx, sy = (u1 - u0) / (ix1 - ix0), (v1 - v0) / (iy1 - iy0)
        offset = np.array([ix0 - u0 / sx, iy0 - v0 / sy], np.float32)
        inv = np.array([1.0 / sx, 1.0 / sy], np.float32)
        boxes = (boxes[ok].reshape(-1, 2, 2) * inv + offset).reshape(-1, 4)
        keypoints = keypoints[ok] * inv + offset
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep][ok], -SCORE_CLIP, SCORE_CLIP)))
        # One box per face and window first, as MediaPipe does per network pass; averaging raw
        # anchors of several scales together in one go let stray boxes pull a face's box away.
        return weighted_nms(boxes.astype(np.float32), keypoints.astype(np.float32), scores.astype(np.float32),
                            self.iou_threshold)


class SecondLook:
    """`second_look.confirms(image_bgr, box)`: whether a candidate face box is found again, at
    >= verify_score, in each of the zoomed windows in which it is `face_px` input px wide."""

    def __init__(self, nets: WindowNets, verify_score: float = VERIFY_SCORE,
                 face_px: tuple[float, ...] = VERIFY_FACE_PX):
        if not 0.0 < verify_score < 1.0:
            raise ValueError(f"verify_score must be in (0, 1), got {verify_score}")
        self.nets = nets
        self.verify_score = float(verify_score)
        self.face_px = tuple(float(p) for p in face_px)
        self._logit = logit(self.verify_score)
        self.looks = 0  # windows run so far (for reports)

    def confirms(self, image_bgr: np.ndarray, box: np.ndarray, face_px: tuple[float, ...] | None = None) -> bool:
        """face_px: the windows' face widths, input px (None: the second look's own)."""
        for px in self.face_px if face_px is None else face_px:  # stops at the first window that does not find it
            self.looks += 1
            found, _, _ = self.nets.run(image_bgr, roi_window(box, px), self._logit)
            if not (len(found) and (iou_matrix(np.asarray(box, np.float32)[None], found)[0] > TRACK_IOU).any()):
                return False
        return True


def face_geometry(xyxy: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eye_ratio (n,), yaw (n,)) of boxes (n, 4) and keypoints (n, 6, 2) in frame px: the eye
    distance over the box width, and the nose's offset from the eyes' midpoint along x, in eye
    distances (0: frontal; its sign says which way the face is turned)."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 6, 2)
    eyes = np.linalg.norm(keypoints[:, 1] - keypoints[:, 0], axis=1)
    width = np.maximum(xyxy[:, 2] - xyxy[:, 0], 1.0)
    mid_x = (keypoints[:, 0, 0] + keypoints[:, 1, 0]) / 2.0
    return eyes / width, (keypoints[:, 2, 0] - mid_x) / np.maximum(eyes, 1.0)


def uncertain(xyxy: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(n,) bool: faces turned too far for an expression label (|yaw| >= UNCERTAIN_YAW)."""
    return np.abs(face_geometry(xyxy, keypoints)[1]) >= UNCERTAIN_YAW


def accept(image_bgr: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
           known_xyxy: np.ndarray, *, keep_score: float, sure_score: float, second_look: SecondLook | None
           ) -> np.ndarray:
    """(n,) bool: which candidates (boxes (n, 4) and keypoints (n, 6, 2) frame px, scores (n,)) are
    faces. A candidate that overlaps a known face (known_xyxy (m, 4): faces of the last frames) by
    TRACK_IOU continues it from keep_score; a new one needs sure_score, or the keypoint check
    (MIN_EYE_RATIO) and the second look (None: never confirmed); one under keep_score must also be
    found in a window in which it is SMALL_LOOK_PX wide."""
    keep = np.zeros(len(scores), bool)
    known = np.zeros(len(scores), bool)
    if len(known_xyxy) and len(scores):
        det, _, _ = match_boxes(boxes, known_xyxy, TRACK_IOU)
        known[det] = True
    keep[known] = scores[known] >= keep_score
    eye_ratio = face_geometry(boxes, keypoints)[0] if len(scores) else np.zeros(0, np.float32)
    box_side = np.max(boxes[:, 2:4] - boxes[:, 0:2], axis=1) if len(scores) else np.zeros(0, np.float32)
    for i in np.flatnonzero(~known):
        if scores[i] >= sure_score:
            keep[i] = True
        elif second_look is not None and eye_ratio[i] >= MIN_EYE_RATIO:
            # the caller's candidates may start below keep_score
            keep[i] = second_look.confirms(image_bgr, boxes[i])
            if keep[i] and scores[i] < keep_score and box_side[i] >= SMALL_LOOK_MIN_PX:
                # Under keep_score the two looks are not enough (the timestamp of Chromium's fake
                # camera passes them): a face is still found when it is small in its window, a
                # texture that fires the network at one zoom is not.
                keep[i] = second_look.confirms(image_bgr, boxes[i], SMALL_LOOK_PX)
    return keep
