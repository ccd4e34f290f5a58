"""The BlazeFace network: one interpreter for one input shape, run on any region of a frame.

    net = BlazeFaceNet(model_path, SHORT_RANGE, height=384, width=384)
    boxes, keypoints, scores = net.run(image_bgr, src=(x0, y0, x1, y1), dst=(u0, v0, u1, v1),
                                       interpolation=cv2.INTER_AREA, logit_threshold=logit(0.5))

`run` resizes the frame region `src` (frame px) into the input area `dst` (input px; the rest of
the input stays black), runs the network and decodes it as MediaPipe's face detection graph
does: RGB input in [-1, 1], SSD anchors (edge.detect.anchors), box and keypoint offsets from the
anchor centres, logits clipped before the sigmoid. Every BlazeFace detector runs through it: the
whole-frame pass (edge.detect.frame) and the windows of the tiled scan and of the second look
(edge.detect.windows); the still-frame carry (edge.detect.motion) passes their faces on. Where a
region's detections land in the frame is the caller's: a letterbox or a window.
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from edge.detect.anchors import SHORT_RANGE, AnchorOptions, anchor_centres_px, ssd_anchor_centres
from edge.interpreter import load_interpreter
from edge.types import Faces

NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion
# MediaPipe clips the logits before the sigmoid (tensors_to_detections: score_clipping_thresh).
SCORE_CLIP = 100.0
ALIGN = 16  # the short-range network's largest stride: input sides of a resized input are multiples of it

# uint8 pixel -> network input in [-1, 1]: a lookup table (one pass, no float temporaries) that
# holds exactly what p * (1 / 127.5) - 1 gives in float32.
_TO_INPUT = ((np.arange(256, dtype=np.uint8) * (1.0 / 127.5)).astype(np.float32) - np.float32(1.0)).reshape(256, 1)

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (k, 4) xyxy, keypoints (k, 6, 2), scores (k,)


def logit(p: float) -> float:
    """The network's logit for a score p in (0, 1): thresholds compare logits, not scores, which
    avoids a sigmoid over every anchor (the sigmoid is monotonic)."""
    return math.log(p / (1.0 - p))


def check_score(name: str, value: float) -> float:
    """A score threshold as a float; ValueError unless it lies in (0, 1)."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return float(value)


def check_image(image_bgr: np.ndarray) -> tuple[int, int]:
    """(height, width) of an (H, W, 3) BGR image; ValueError for any other shape."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image_bgr.shape}")
    return image_bgr.shape[0], image_bgr.shape[1]


def no_detections() -> Detections:
    return np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros((0,), np.float32)


def decode(raw: np.ndarray, anchors: np.ndarray, unit: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Regressors -> boxes and keypoints (MediaPipe's TensorsToDetections decoding).

    raw: (k, 16) float32: centre x, centre y, width, height, then 6 keypoints (x, y), all in
    input pixels relative to the anchor centre. anchors: (k, 2) centres (fixed size 1) in units
    of `unit` input pixels: 1 for input pixels, the input side for MediaPipe's normalised
    coordinates. Returns boxes (k, 4) xyxy and keypoints (k, 6, 2) in the anchors' units.
    """
    scaled = raw / np.float32(unit)
    centre = scaled[:, 0:2] + anchors
    half = scaled[:, 2:4] * 0.5
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = scaled[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes.astype(np.float32), keypoints.astype(np.float32)


def frame_faces(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, height: int, width: int
                ) -> tuple[Faces, np.ndarray]:
    """Detections in frame px -> (Faces, visible): boxes become pixel indices (floored, as MediaPipe
    Tasks reports its boxes) clipped to the (height, width) frame; visible (k,) bool marks the
    detections whose clipped box is not empty, the rows the Faces keep."""
    xyxy = np.floor(boxes)
    np.clip(xyxy[:, 0::2], 0, width, out=xyxy[:, 0::2])
    np.clip(xyxy[:, 1::2], 0, height, out=xyxy[:, 1::2])
    xyxy = xyxy.astype(np.int32)
    visible = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    faces = Faces(xyxy[visible], scores[visible].astype(np.float32), keypoints[visible].astype(np.float32))
    return faces, visible


class BlazeFaceNet:
    """A BlazeFace model allocated for one (height, width) input, with its anchors and buffers.

    options: the model's anchor layout (SHORT_RANGE, FULL_RANGE); the file must have its square
    input. height, width (default: that square): the short-range network is fully convolutional,
    so it also runs on larger inputs (multiples of ALIGN). normalised: decode in units of the
    square input's side, MediaPipe's own coordinates (the whole-frame pass, so that its boxes are
    MediaPipe's), instead of input pixels. hint: what the error says to do when the file is not
    this range's model. One net serves one thread at a time.
    """

    def __init__(self, model_path: str | os.PathLike, options: AnchorOptions = SHORT_RANGE, *,
                 height: int | None = None, width: int | None = None, num_threads: int | None = None,
                 normalised: bool = False, hint: str = "choose the range that matches the file"):
        size = options.input_size
        height, width = height or size, width or size
        self.interp = load_interpreter(model_path, num_threads)
        inp = self.interp.get_input_details()[0]
        if tuple(inp["shape"]) != (1, size, size, 3) or inp["dtype"] != np.float32:
            rng, other = ("short", "full") if options.input_size == SHORT_RANGE.input_size else ("full", "short")
            raise ValueError(
                f"{model_path}: input {tuple(inp['shape'])} {np.dtype(inp['dtype']).name} is not the {rng}-range "
                f"BlazeFace input (1, {size}, {size}, 3) float32; is this the {other}-range model? ({hint})")
        self.input_index = inp["index"]
        if (height, width) != (size, size):
            self.interp.resize_tensor_input(self.input_index, [1, height, width, 3])
            self.interp.allocate_tensors()
        if normalised and (height, width) != (size, size):
            raise ValueError("normalised coordinates need the model's square input")
        self.unit = float(size) if normalised else 1.0  # input px per decoded unit
        # (N, 2) anchor centres x, y in those units
        self.anchors = ssd_anchor_centres(options) if normalised else anchor_centres_px(options, height, width)
        n = self.anchors.shape[0]
        self.regressor_index = self.score_index = None
        for out in self.interp.get_output_details():
            shape = tuple(out["shape"])
            if shape == (1, n, 16):
                self.regressor_index = out["index"]
            elif shape == (1, n, 1):
                self.score_index = out["index"]
        if self.regressor_index is None or self.score_index is None:
            shapes = [tuple(o["shape"]) for o in self.interp.get_output_details()]
            raise ValueError(f"{model_path}: at input {height}x{width} the outputs {shapes} do not match the "
                             f"BlazeFace layout (1, {n}, 16) + (1, {n}, 1)")
        self.canvas = np.zeros((height, width, 3), np.uint8)  # RGB; what `dst` leaves stays black
        self.input = np.zeros((1, height, width, 3), np.float32)  # RGB in [-1, 1]
        self._resized = np.empty((0, 0, 3), np.uint8)  # BGR, reused while the dst size holds
        self._placed: tuple[int, int, int, int] | None = None  # the canvas area the last region filled

    def close(self) -> None:
        self.interp = None

    def run(self, image_bgr: np.ndarray, src: tuple[int, int, int, int], dst: tuple[int, int, int, int],
            interpolation: int, logit_threshold: float) -> Detections:
        """Detections of the frame region src = (x0, y0, x1, y1) frame px, resized into dst = (u0,
        v0, u1, v1) input px: boxes (k, 4) xyxy and keypoints (k, 6, 2) in input px (normalised:
        in input sides), scores (k,) float32, for the anchors whose logit is >= logit_threshold."""
        if self.interp is None:
            raise RuntimeError("detector is closed")
        x0, y0, x1, y1 = src
        u0, v0, u1, v1 = dst
        if self._placed != dst:
            self.canvas[:] = 0  # the padding moves with the placement
            self._placed = dst
            self._resized = np.empty((v1 - v0, u1 - u0, 3), np.uint8)
        cv2.resize(image_bgr[y0:y1, x0:x1], (u1 - u0, v1 - v0), dst=self._resized, interpolation=interpolation)
        if (v1 - v0, u1 - u0) == self.canvas.shape[:2]:  # the region fills the input (tiles, windows)
            cv2.cvtColor(self._resized, cv2.COLOR_BGR2RGB, dst=self.canvas)
        else:  # a letterbox: OpenCV writes only into whole, contiguous arrays
            self.canvas[v0:v1, u0:u1] = self._resized[:, :, ::-1]
        cv2.LUT(self.canvas, _TO_INPUT, dst=self.input[0])
        interp = self.interp
        interp.set_tensor(self.input_index, self.input)
        interp.invoke()
        logits = interp.get_tensor(self.score_index)[0, :, 0]  # (N,)
        keep = np.flatnonzero(logits >= logit_threshold)
        if keep.size == 0:
            return no_detections()
        raw = interp.get_tensor(self.regressor_index)[0, keep]  # (k, 16) input-px offsets from the anchor
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -SCORE_CLIP, SCORE_CLIP)))
        boxes, keypoints = decode(raw, self.anchors[keep], self.unit)
        return boxes, keypoints, scores.astype(np.float32)
