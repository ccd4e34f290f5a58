"""Whole-frame face detection: BlazeFace on our own LiteRT interpreter, or MediaPipe Tasks.

`BlazeFaceDetector` (backend "blazeface") needs only the TFLite interpreter; it reproduces
MediaPipe's face detection graph: the frame letterboxed into the network's square input, run and
decoded by edge.detect.blazeface, then MediaPipe's weighted non-maximum suppression.
`MediaPipeDetector` (backend "mediapipe") runs the MediaPipe Tasks FaceDetector itself (pip
install '.[mediapipe]'), short range only, and maps its result into the same `Faces`.

    with BlazeFaceDetector(model_path) as detector:
        faces = detector.detect(image_bgr)  # Faces: xyxy (n,4) int32, score (n,), keypoints (n,6,2)

Both are `FaceDetector`s (edge.detect.factory builds them from a DetectorConfig).
"""

from __future__ import annotations

import os
import time

import cv2
import numpy as np

from edge.boxes import weighted_nms
from edge.detect.anchors import FULL_RANGE, SHORT_RANGE, AnchorOptions
from edge.detect.blazeface import NUM_KEYPOINTS, BlazeFaceNet, check_image, check_score, frame_faces, logit
from edge.detect.windows import FrameLevels, frame_of
from edge.types import Faces

# Faces scoring below this are dropped in a whole-frame pass. Read off the curve `fer-edge bench
# threshold` measures (reports/threshold/): the lowest threshold that keeps boxes off nearly every
# face-free frame (the criterion and the curve: docs/detection.md). Tiled scans have their own
# default (edge.detect.tiling.TILES_SCORE_THRESHOLD).
DEFAULT_SCORE_THRESHOLD = 0.65


class BlazeFaceDetector:
    """BlazeFace (short or full range) on the whole frame, letterboxed and decoded like MediaPipe.

    The network and its buffers are built once and reused by detect(), so one detector serves one
    thread at a time.
    """

    def __init__(self, model_path: str | os.PathLike, *, full_range: bool = False,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD, iou_threshold: float = 0.3,
                 num_threads: int | None = None):
        self.score_threshold = check_score("score_threshold", score_threshold)
        self.model_path = str(model_path)
        self.full_range = bool(full_range)
        self.iou_threshold = float(iou_threshold)
        options: AnchorOptions = FULL_RANGE if full_range else SHORT_RANGE
        self._net: BlazeFaceNet | None = BlazeFaceNet(model_path, options, num_threads=num_threads, normalised=True)
        self.input_size = options.input_size
        self._logit_threshold = logit(self.score_threshold)
        # Short range samples nearest-neighbour: with it the network input, and so every score
        # and keypoint, matches MediaPipe Tasks' CPU pipeline exactly (linear or area resizing
        # moved boxes by several pixels against it). Full range looks for faces only ~10 input
        # pixels wide, and area averaging finds clearly more of them than point sampling.
        self._interpolation = cv2.INTER_AREA if full_range else cv2.INTER_NEAREST
        self._geometry: tuple | None = None  # ((h, w), (new_w, new_h, pad_x, pad_y)) of the last frame

    def __enter__(self) -> "BlazeFaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._net = None

    def reset(self) -> None:
        """Nothing to forget: every frame is detected on its own."""

    def _letterbox(self, h: int, w: int) -> tuple[int, int, int, int]:
        if self._geometry is not None and self._geometry[0] == (h, w):
            return self._geometry[1]
        size = self.input_size
        scale = size / max(h, w)
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        self._geometry = ((h, w), (new_w, new_h, pad_x, pad_y))
        return self._geometry[1]

    def detect(self, image_bgr: np.ndarray | FrameLevels) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame (or its FrameLevels), in frame pixels."""
        if self._net is None:
            raise RuntimeError("detector is closed")
        image_bgr = frame_of(image_bgr)
        h, w = check_image(image_bgr)
        new_w, new_h, pad_x, pad_y = self._letterbox(h, w)
        boxes, keypoints, scores = self._net.run(image_bgr, (0, 0, w, h), (pad_x, pad_y, pad_x + new_w, pad_y + new_h),
                                                 self._interpolation, self._logit_threshold)
        if not len(scores):
            return Faces.empty()
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores, self.iou_threshold)
        # Normalised letterbox coordinates -> frame pixels (undo padding, then scaling).
        size = self.input_size
        sx, sy = size * w / new_w, size * h / new_h
        ox, oy = pad_x * w / new_w, pad_y * h / new_h
        boxes_px = boxes * np.array([sx, sy, sx, sy], np.float32) - np.array([ox, oy, ox, oy], np.float32)
        keypoints_px = keypoints * np.array([sx, sy], np.float32) - np.array([ox, oy], np.float32)
        return frame_faces(boxes_px, keypoints_px, scores, h, w)[0]


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
        self.score_threshold = check_score("score_threshold", score_threshold)
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

    def detect(self, image_bgr: np.ndarray | FrameLevels) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame (or its FrameLevels), in frame pixels."""
        if self._detector is None:
            raise RuntimeError("detector is closed")
        image_bgr = frame_of(image_bgr)
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
