"""Face detection: MediaPipe's BlazeFace models on our own LiteRT interpreter, or MediaPipe Tasks.

Backend "blazeface" (default) needs only the TFLite interpreter; it reproduces MediaPipe's face
detection graph: letterboxed RGB input in [-1, 1], SSD anchors (edge.anchors), box and keypoint
decoding, sigmoid scores, and MediaPipe's weighted non-maximum suppression. Backend "mediapipe"
runs the MediaPipe Tasks FaceDetector itself (pip install '.[mediapipe]'), short range
only, and maps its result into the same `Faces`.

    with make_detector(range="short") as detector:
        faces = detector.detect(image_bgr)  # Faces: xyxy (n,4) int32, score (n,), keypoints (n,6,2)

Every detector is a `FaceDetector` (detect, reset, close).
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Protocol

import cv2
import numpy as np

from edge.anchors import FULL_RANGE, SHORT_RANGE, AnchorOptions, ssd_anchor_centres
from edge.boxes import weighted_nms
from edge.interpreter import load_interpreter
from edge.motion import CARRY_FRAMES, StillCarry
from edge.tiling import TILES_PER_FRAME
from edge.types import Faces

log = logging.getLogger(__name__)

BACKENDS = ("blazeface", "mediapipe")
RANGES = ("short", "full")
NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion
# MediaPipe clips the logits before the sigmoid (tensors_to_detections: score_clipping_thresh).
SCORE_CLIP = 100.0
# Faces scoring below this are dropped in a whole-frame pass. Read off the curve `fer-edge bench
# threshold` measures (reports/threshold/): the lowest threshold that boxes at most 0.5 % of
# face-free frames. Tiled scans have their own default (edge.tiling.TILES_SCORE_THRESHOLD).
DEFAULT_SCORE_THRESHOLD = 0.65


class FaceDetector(Protocol):
    """What the pipeline needs of a detector (BlazeFaceDetector, MediaPipeDetector, and the tiled
    ones in edge.tiling): faces in a frame; forget remembered faces; release the interpreters."""

    def detect(self, image_bgr: np.ndarray) -> Faces: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class BlazeFaceDetector:
    """BlazeFace (short or full range) on the LiteRT interpreter, decoded like MediaPipe.

    The interpreter, anchors and input buffers are built once and reused by detect(), so one
    detector serves one thread at a time.
    """

    def __init__(self, model_path: str | os.PathLike, *, full_range: bool = False,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD, iou_threshold: float = 0.3,
                 num_threads: int | None = None):
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        self.model_path = str(model_path)
        self.full_range = bool(full_range)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        options: AnchorOptions = FULL_RANGE if full_range else SHORT_RANGE
        self._interp = load_interpreter(model_path, num_threads)
        inp = self._interp.get_input_details()[0]
        size = options.input_size
        if tuple(inp["shape"]) != (1, size, size, 3) or inp["dtype"] != np.float32:
            other = "short" if full_range else "full"
            raise ValueError(
                f"{model_path}: input {tuple(inp['shape'])} {np.dtype(inp['dtype']).name} is not the "
                f"{'full' if full_range else 'short'}-range BlazeFace input (1, {size}, {size}, 3) "
                f"float32; is this the {other}-range model? (choose the range that matches the file)")
        self.input_size = size
        self._anchors = ssd_anchor_centres(options)  # (N, 2) normalised x, y
        n = self._anchors.shape[0]
        self._input_index = inp["index"]
        self._regressor_index = self._score_index = None
        for out in self._interp.get_output_details():
            shape = tuple(out["shape"])
            if shape == (1, n, 16):
                self._regressor_index = out["index"]
            elif shape == (1, n, 1):
                self._score_index = out["index"]
        if self._regressor_index is None or self._score_index is None:
            shapes = [tuple(o["shape"]) for o in self._interp.get_output_details()]
            raise ValueError(f"{model_path}: outputs {shapes} do not match the BlazeFace layout "
                             f"(1, {n}, 16) + (1, {n}, 1)")
        # Comparing logits avoids a sigmoid over every anchor; the sigmoid is monotonic.
        self._logit_threshold = math.log(self.score_threshold / (1.0 - self.score_threshold))
        # Short range samples nearest-neighbour: with it the network input, and so every score
        # and keypoint, matches MediaPipe Tasks' CPU pipeline exactly (linear or area resizing
        # moved boxes by several pixels against it). Full range looks for faces only ~10 input
        # pixels wide, and area averaging finds clearly more of them than point sampling.
        self._interpolation = cv2.INTER_AREA if full_range else cv2.INTER_NEAREST
        self._canvas = np.zeros((size, size, 3), np.uint8)  # letterboxed RGB; padding stays black
        self._input = np.zeros((1, size, size, 3), np.float32)  # RGB in [-1, 1]
        self._resized = np.empty((0, 0, 3), np.uint8)
        self._geometry: tuple | None = None  # ((h, w), (new_w, new_h, pad_x, pad_y)) of the last frame

    def __enter__(self) -> "BlazeFaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._interp = None

    def reset(self) -> None:
        """Nothing to forget: every frame is detected on its own."""

    def _letterbox(self, h: int, w: int) -> tuple[int, int, int, int]:
        if self._geometry is not None and self._geometry[0] == (h, w):
            return self._geometry[1]
        size = self.input_size
        scale = size / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        self._canvas[:] = 0  # the padded border moves when the frame shape changes
        self._resized = np.empty((new_h, new_w, 3), np.uint8)  # BGR, reused while the shape holds
        self._geometry = ((h, w), (new_w, new_h, pad_x, pad_y))
        return self._geometry[1]

    def detect(self, image_bgr: np.ndarray) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame, in frame pixels."""
        if self._interp is None:
            raise RuntimeError("detector is closed")
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image_bgr.shape}")
        h, w = image_bgr.shape[:2]
        new_w, new_h, pad_x, pad_y = self._letterbox(h, w)
        size = self.input_size
        cv2.resize(image_bgr, (new_w, new_h), dst=self._resized, interpolation=self._interpolation)
        self._canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = self._resized[:, :, ::-1]  # BGR -> RGB
        np.multiply(self._canvas, 1.0 / 127.5, out=self._input[0], casting="unsafe")
        self._input -= 1.0
        interp = self._interp
        interp.set_tensor(self._input_index, self._input)
        interp.invoke()
        logits = interp.get_tensor(self._score_index)[0, :, 0]  # (N,)
        keep = np.flatnonzero(logits >= self._logit_threshold)
        if keep.size == 0:
            return Faces.empty()
        raw = interp.get_tensor(self._regressor_index)[0, keep]  # (k, 16) input-pixel offsets
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -SCORE_CLIP, SCORE_CLIP)))
        boxes, keypoints = decode(raw, self._anchors[keep], size)
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores, self.iou_threshold)
        # Normalised letterbox coordinates -> frame pixels (undo padding, then scaling).
        sx, sy = size * w / new_w, size * h / new_h
        ox, oy = pad_x * w / new_w, pad_y * h / new_h
        boxes_px = boxes * np.array([sx, sy, sx, sy], np.float32) - np.array([ox, oy, ox, oy], np.float32)
        keypoints_px = keypoints * np.array([sx, sy], np.float32) - np.array([ox, oy], np.float32)
        xyxy = np.floor(boxes_px)  # pixel indices, as MediaPipe Tasks reports its boxes
        np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
        xyxy = xyxy.astype(np.int32)
        visible = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return Faces(xyxy[visible], scores[visible].astype(np.float32),
                     keypoints_px[visible].astype(np.float32))


def decode(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Regressors -> normalised boxes and keypoints (MediaPipe's TensorsToDetections decoding).

    raw: (k, 16) float32: centre x, centre y, width, height, then 6 keypoints (x, y), all in
    input pixels relative to the anchor centre. anchors: (k, 2) normalised centres (fixed size 1).
    Returns boxes (k, 4) xyxy and keypoints (k, 6, 2), normalised to the network input.
    """
    scaled = raw / np.float32(input_size)  # x_scale = y_scale = w_scale = h_scale = input size
    centre = scaled[:, 0:2] + anchors
    half = scaled[:, 2:4] * 0.5
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = scaled[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes.astype(np.float32), keypoints.astype(np.float32)


class MediaPipeDetector:
    """The MediaPipe Tasks FaceDetector (VIDEO mode), mapped into `Faces`. Short range only.

    Tasks reads the model's metadata, so it needs the official blaze_face_short_range.tflite.
    """

    def __init__(self, model_path: str | os.PathLike, *, full_range: bool = False,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD, iou_threshold: float = 0.3,
                 num_threads: int | None = None):
        if full_range:
            raise ValueError("the MediaPipe Tasks FaceDetector runs only the short-range model; "
                             "use the blazeface backend for the full range")
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions
            from mediapipe.tasks.python.vision import FaceDetector, FaceDetectorOptions, RunningMode
        except ImportError as exc:
            raise ImportError("the mediapipe backend needs MediaPipe: pip install '.[mediapipe]' in the fer-edge checkout "
                              "(or use the default blazeface backend)") from exc
        del num_threads  # Tasks picks its own threading
        self._detector = None
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"{model_path}: model file not found")
        self.model_path = str(model_path)
        self.full_range = False
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self._mp = mp
        options = FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=self.model_path),
            running_mode=RunningMode.VIDEO,
            min_detection_confidence=self.score_threshold,
            min_suppression_threshold=self.iou_threshold,
        )
        self._detector = FaceDetector.create_from_options(options)
        self._last_ts_ms = -1

    def __enter__(self) -> "MediaPipeDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def reset(self) -> None:
        """Nothing to forget: every frame is detected on its own."""

    def detect(self, image_bgr: np.ndarray) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame, in frame pixels."""
        if self._detector is None:
            raise RuntimeError("detector is closed")
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)  # (H, W, 3) uint8 RGB, contiguous
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        # VIDEO mode needs strictly increasing timestamps, even for frames faster than 1 ms.
        ts_ms = max(int(time.monotonic() * 1000), self._last_ts_ms + 1)
        self._last_ts_ms = ts_ms
        result = self._detector.detect_for_video(image, ts_ms)
        n = len(result.detections)
        if n == 0:
            return Faces.empty()
        xyxy = np.zeros((n, 4), np.int32)
        score = np.zeros((n,), np.float32)
        keypoints = np.zeros((n, NUM_KEYPOINTS, 2), np.float32)
        for i, det in enumerate(result.detections):
            bb = det.bounding_box  # pixels: origin_x, origin_y, width, height
            xyxy[i] = (bb.origin_x, bb.origin_y, bb.origin_x + bb.width, bb.origin_y + bb.height)
            score[i] = det.categories[0].score if det.categories else 0.0
            for k, kp in enumerate((det.keypoints or [])[:NUM_KEYPOINTS]):
                keypoints[i, k] = (kp.x * w, kp.y * h)  # normalised -> pixels
        np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
        return Faces(xyxy, score, keypoints)


SCANS = ("auto", "frame", "tiles")


def make_detector(backend: str = "blazeface", range: str = "short", model_path: str | os.PathLike | None = None,
                  score_threshold: float | None = None, num_threads: int | None = None, scan: str = "frame",
                  min_face_px: float = 40.0, tiles_per_frame: int = TILES_PER_FRAME, tile_threads: int | None = None,
                  carry_frames: int = CARRY_FRAMES) -> FaceDetector:
    """Build the chosen detector. The model file: model_path (a file, or a directory holding the
    official file name), else edge.models' lookup (FER_EDGE_MODEL_DIR, then the user cache);
    ModelNotFoundError says how to get it.

    scan: "frame" runs the whole frame through the network once, and keeps what scores at least
    the threshold; "tiles" runs the short-range model over the coarse frame, a pyramid of windows
    and windows around known faces, finds faces down to `min_face_px`, and keeps a new face only
    when it is sure or a second look confirms it (edge.tiling, edge.windows); "auto" is "tiles"
    with the short-range BlazeFace backend and "frame" elsewhere. tile_threads: interpreter threads
    of the tiled detector (None: up to 2); num_threads: of the whole-frame one. score_threshold:
    None gives each scan its default (DEFAULT_SCORE_THRESHOLD whole-frame, TILES_SCORE_THRESHOLD
    tiled); a value applies to both. carry_frames: how many frames in a row a sure face may keep
    its detection while its surroundings stand still (edge.motion: StillCarry for a whole frame,
    and per face in tiles); 0 runs the network on every frame.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown detector backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if range not in RANGES:
        raise ValueError(f"unknown detector range {range!r}; choose one of {', '.join(RANGES)}")
    if scan not in SCANS:
        raise ValueError(f"unknown scan {scan!r}; choose one of {', '.join(SCANS)}")
    if backend == "mediapipe" and range != "short":
        raise ValueError("the mediapipe backend runs only the short-range model; "
                         "use --detector blazeface for --range full")
    if scan == "tiles" and (backend != "blazeface" or range != "short"):
        raise ValueError("tiles run the short-range model on the blazeface backend; "
                         "use --range short --detector blazeface, or --scan frame")
    from edge.models import resolve_detector_model

    # An explicit path is checked too, so a wrong --detector-model gets the same how-to message.
    model_path = resolve_detector_model(range, model_path)
    cls = BlazeFaceDetector if backend == "blazeface" else MediaPipeDetector
    tiled = scan == "tiles" or (scan == "auto" and backend == "blazeface" and range == "short")
    frame_threshold = DEFAULT_SCORE_THRESHOLD if score_threshold is None else score_threshold
    from edge.tiling import TILES_SCORE_THRESHOLD, TiledDetector

    if not tiled:
        return StillCarry(cls(model_path, full_range=(range == "full"), score_threshold=frame_threshold,
                              num_threads=num_threads), carry_frames)
    tiles = TiledDetector(model_path, num_threads=tile_threads, min_face_px=min_face_px,
                          tiles_per_frame=tiles_per_frame, carry_frames=carry_frames, small_threads=num_threads,
                          score_threshold=TILES_SCORE_THRESHOLD if score_threshold is None else score_threshold)
    return StillCarry(tiles, carry_frames)
