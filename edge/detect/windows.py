"""Short-range BlazeFace on any window of a frame: the tiled scan's and the second look's network calls.

A `Window` maps input pixels to frame pixels (a zoom and an offset). `WindowNets.run(image, window)`
resamples that part of the frame into the window's input, runs the network (edge.detect.blazeface;
one net per input shape, built on first use) and returns its detections in frame pixels, without
those cut by a window edge inside the frame. The tiled scan (edge.detect.tiling) and the second
look (edge.detect.confirm) are made of such windows. `FrameLevels` holds one frame and its
halvings, so that every window of that frame that shrinks it starts from the level nearest its zoom.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from edge.boxes import weighted_nms
from edge.detect.anchors import SHORT_RANGE
from edge.detect.blazeface import BlazeFaceNet, Detections, no_detections

ROI_INPUT_PX = 128  # region-of-interest window side, input px
# A remembered face's size in its region-of-interest window. The network scores a face highest at
# 64-80 px of its 128 px input and much lower at 48 (docs/detection.md, *Settings and their measurements*).
ROI_FACE_INPUT_PX = 72
EDGE_PX = 2.0  # a box within this many input px of an inner window edge is cut by it


@dataclass(frozen=True, slots=True)
class Window:
    """One network call: the input pixel (u, v) samples frame pixel (x + u / scale, y + v / scale)."""

    x: float  # frame px at the input's left edge
    y: float  # frame px at the input's top edge
    scale: float  # input px per frame px
    height: int  # input px, a multiple of edge.detect.blazeface.ALIGN
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


class FrameLevels:
    """One (H, W, 3) uint8 BGR frame and its halvings, each made when first asked for and kept for
    the frame's windows: `levels.level(k)` is the frame 2**k times smaller, each pixel the mean of
    a 2**k x 2**k block (the last row or column of an odd side dropped).

    Area resampling by a fractional factor is OpenCV's slow path, and its cost grows with the source
    pixels: a 1080p frame shrunk into a 128 px window costs several network passes of the window.
    An exact halving (bilinear at exactly half averages 2x2 pixels) is cheap, so a window that
    shrinks the frame by at least 2 area-resamples a halving instead, the same block means in fewer
    pixels.
    """

    MAX_LEVEL = 4

    def __init__(self, image_bgr: np.ndarray):
        self.shape = image_bgr.shape
        self._levels = [image_bgr]
        # The frame's gray motion thumbnail (edge.detect.motion.Thumbnail), made by the first
        # Thumbnail that looks at this frame and copied by any other: the still-frame carry and the
        # tiled scan's schedule both look at every frame.
        self.gray_thumb: np.ndarray | None = None

    @staticmethod
    def of(image: "np.ndarray | FrameLevels") -> "FrameLevels":
        """`image` itself when it is a FrameLevels, else a new one of this (H, W, 3) uint8 BGR frame."""
        return image if isinstance(image, FrameLevels) else FrameLevels(image)

    @property
    def image(self) -> np.ndarray:
        """The frame itself, (H, W, 3) uint8 BGR."""
        return self._levels[0]

    def level_for(self, scale: float) -> int:
        """The smallest level a window with this zoom (input px per frame px) still shrinks or keeps."""
        k = 0
        while k < self.MAX_LEVEL and scale * (2 << k) <= 1.0 and min(self.shape[:2]) >> (k + 1) >= 1:
            k += 1
        return k

    def level(self, k: int) -> np.ndarray:
        while len(self._levels) <= k:
            prev = self._levels[-1]
            h, w = prev.shape[0] // 2, prev.shape[1] // 2
            self._levels.append(cv2.resize(prev[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_LINEAR))
        return self._levels[k]


def frame_of(image: np.ndarray | FrameLevels) -> np.ndarray:
    """The (H, W, 3) uint8 BGR frame of an image or of its FrameLevels."""
    return image.image if isinstance(image, FrameLevels) else image


# Interpreters kept, one per input shape: a video's scan uses a handful of shapes; a photo folder
# can use a new one per photo size.
MAX_SHAPES = 12


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
        self._nets: OrderedDict[tuple[int, int], BlazeFaceNet] = OrderedDict()  # least recently used first
        self.net(128, 128)  # fail now, not on the first frame, when the model is the wrong one

    def net(self, height: int, width: int) -> BlazeFaceNet:
        key = (height, width)
        net = self._nets.get(key)
        if net is None:
            threads = self.small_threads if height * width <= ROI_INPUT_PX ** 2 else self.num_threads
            net = self._nets[key] = BlazeFaceNet(
                self.model_path, SHORT_RANGE, height=height, width=width, num_threads=threads,
                hint="the tiled scan and the second look run the short-range model")
            # Photos of many sizes each ask for their own tile shapes: keep the recent ones only, so
            # that a folder of thousands of photos does not hold an interpreter per size.
            while len(self._nets) > MAX_SHAPES:
                self._nets.popitem(last=False)
        else:
            self._nets.move_to_end(key)
        return net

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """The input shapes (height, width) with an interpreter held, least recently used first."""
        return tuple(self._nets)

    def close(self) -> None:
        self._nets.clear()

    def run(self, image: np.ndarray | FrameLevels, win: Window, logit_threshold: float) -> Detections:
        """Raw detections of one window of a (H, W, 3) uint8 BGR frame (or its FrameLevels, shared by
        the frame's windows): boxes (k, 4) and keypoints (k, 6, 2) in frame px, scores (k,)."""
        levels = FrameLevels.of(image)
        net = self.net(win.height, win.width)
        k = levels.level_for(win.scale)
        source, f = levels.level(k), 1 << k
        # The source pixels the window covers (in level k: whole blocks of f x f frame px), the
        # frame pixels they stand for, and where those land in the input.
        jx0, jy0 = max(int(math.ceil(win.x / f)), 0), max(int(math.ceil(win.y / f)), 0)
        jx1 = min(int(math.floor((win.x + win.width / win.scale) / f)), source.shape[1])
        jy1 = min(int(math.floor((win.y + win.height / win.scale) / f)), source.shape[0])
        ix0, iy0, ix1, iy1 = jx0 * f, jy0 * f, jx1 * f, jy1 * f
        u0 = max(0, int(round((ix0 - win.x) * win.scale)))
        v0 = max(0, int(round((iy0 - win.y) * win.scale)))
        u1 = min(win.width, int(round((ix1 - win.x) * win.scale)))
        v1 = min(win.height, int(round((iy1 - win.y) * win.scale)))
        if ix1 <= ix0 or iy1 <= iy0 or u1 <= u0 or v1 <= v0:
            return no_detections()
        interpolation = cv2.INTER_AREA if (u1 - u0) < (jx1 - jx0) else cv2.INTER_LINEAR
        boxes, keypoints, scores = net.run(source, (jx0, jy0, jx1, jy1), (u0, v0, u1, v1), interpolation,
                                           logit_threshold)  # input px
        if not len(scores):
            return no_detections()
        # A face cut by a window edge inside the frame is seen whole by a neighbouring window.
        cut = np.zeros(len(scores), bool)
        if win.kind != "coarse":
            if ix0 > 0:
                cut |= boxes[:, 0] <= u0 + EDGE_PX
            if iy0 > 0:
                cut |= boxes[:, 1] <= v0 + EDGE_PX
            if jx1 < source.shape[1]:  # inside the frame (a level's dropped odd edge is the frame's)
                cut |= boxes[:, 2] >= u1 - EDGE_PX
            if jy1 < source.shape[0]:
                cut |= boxes[:, 3] >= v1 - EDGE_PX
        ok = ~cut
        # Input px -> frame px, with the scale the resize really used on each axis.
        sx, sy = (u1 - u0) / (ix1 - ix0), (v1 - v0) / (iy1 - iy0)
        offset = np.array([ix0 - u0 / sx, iy0 - v0 / sy], np.float32)
        inv = np.array([1.0 / sx, 1.0 / sy], np.float32)
        boxes = (boxes[ok].reshape(-1, 2, 2) * inv + offset).reshape(-1, 4)
        keypoints = keypoints[ok] * inv + offset
        scores = scores[ok]
        # One box per face and window first, as MediaPipe does per network pass; averaging raw
        # anchors of several scales together in one go let stray boxes pull a face's box away.
        return weighted_nms(boxes.astype(np.float32), keypoints.astype(np.float32), scores.astype(np.float32),
                            self.iou_threshold)


