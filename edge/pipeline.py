"""The per-frame pipeline: detect -> crop (shared preprocessing) -> classify -> track/smooth.

    from edge import Pipeline
    with Pipeline.from_defaults(detector="blazeface") as pipe:
        result = pipe.process(image_bgr)      # FrameResult, timings per stage in ms

Every stage is built once. The frame is converted to gray once; each face is cropped with the
model sidecar's CropPolicy and all crops go through `to_model_input` and one classifier call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from edge.classifier import EmotionClassifier
from edge.detector import DEFAULT_SCORE_THRESHOLD
from edge.preprocess import crop_face, to_gray, to_model_input
from edge.tracker import Tracker, TrackerConfig
from edge.types import Faces, Frame, FrameResult, StageTimings

log = logging.getLogger(__name__)


# One interpreter thread each: at 128x128 and 24x24 the models are too small for threads to pay
# off, and the capture thread needs the other core. Measured 640x480, 1 face: 339 frames/s with
# 1 thread vs 294 with 2 (`fer-edge bench --threads 1|2`).
DEFAULT_THREADS = 1


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    detector: str = "blazeface"  # blazeface (LiteRT) | mediapipe (MediaPipe Tasks)
    range: str = "short"  # short (faces within ~2 m) | full (up to ~5 m)
    detector_model: str | None = None  # None: FER_EDGE_MODEL_DIR, then the user cache
    emotion_model: str | None = None  # None: the shipped models/emotion_int8.tflite
    threads: int | None = None  # interpreter threads per model; None: DEFAULT_THREADS
    score_threshold: float = DEFAULT_SCORE_THRESHOLD  # detector confidence
    smooth: bool = True  # EMA + label hysteresis per track
    ema_alpha: float = 0.4
    hysteresis_margin: float = 0.15
    hysteresis_frames: int = 3
    max_missed: int = 10  # frames a track survives without a detection ...
    max_age_s: float = 2.0  # ... or seconds, whichever is longer
    iou_threshold: float = 0.3
    # One classifier call for all faces of a frame. Measured (x86, 2 cores, XNNPACK, p50 ms per
    # call, batched vs one-by-one, face count changing every frame): 24x24 int8 model 1 face
    # 0.41/0.40, 2: 0.78/0.79, 3: 1.16/1.17, 4: 1.56/1.58; the 48x48 provisional model
    # 0.75/0.73, 1.33/1.36, 1.98/2.05, 2.64/2.72. Cost is linear in faces either way, so it is
    # a tie; batched for one interpreter call per frame and its slightly steadier tail.
    batch: bool = True

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(iou_threshold=self.iou_threshold, max_missed=self.max_missed, max_age_s=self.max_age_s,
                             smooth=self.smooth, ema_alpha=self.ema_alpha, hysteresis_margin=self.hysteresis_margin,
                             hysteresis_frames=self.hysteresis_frames)


class Pipeline:
    """`result = pipeline.process(image_bgr)`; a context manager that closes its models."""

    def __init__(self, config: PipelineConfig, detector, classifier: EmotionClassifier):
        self.config = config
        self.detector = detector
        self.classifier = classifier
        self.card = classifier.card
        self.labels: tuple[str, ...] = tuple(classifier.labels)
        self.tracker = Tracker(config.tracker_config())
        self._index = 0
        self._t0 = time.monotonic()

    @classmethod
    def from_config(cls, config: PipelineConfig) -> "Pipeline":
        """Build the detector and classifier once. Raises ModelNotFoundError / SidecarError."""
        from edge.detector import make_detector
        from edge.models import default_emotion_model

        emotion_path = Path(config.emotion_model) if config.emotion_model else default_emotion_model()
        threads = config.threads if config.threads is not None else DEFAULT_THREADS
        classifier = EmotionClassifier(emotion_path, num_threads=threads, batch=config.batch)
        detector = make_detector(backend=config.detector, range=config.range, model_path=config.detector_model,
                                 score_threshold=config.score_threshold, num_threads=threads)
        return cls(config, detector, classifier)

    @classmethod
    def from_defaults(cls, **overrides) -> "Pipeline":
        """`Pipeline.from_defaults(detector="mediapipe", smooth=False)`: PipelineConfig fields."""
        known = {f.name for f in fields(PipelineConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown PipelineConfig field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls.from_config(replace(PipelineConfig(), **overrides))

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self.detector, "close", None)
        if close is not None:
            close()

    def reset(self) -> None:
        """Forget all tracks (a new, unrelated video)."""
        self.tracker.reset()

    def process(self, image_bgr: np.ndarray, *, index: int | None = None, t: float | None = None,
                source: str = "") -> FrameResult:
        """image_bgr: (H, W, 3) uint8 BGR -> FrameResult (boxes in this image's pixels)."""
        if index is None:
            index = self._index
        if t is None:
            t = time.monotonic() - self._t0
        return self.process_frame(Frame(image=image_bgr, index=index, t=t, source=source))

    def process_frame(self, frame: Frame) -> FrameResult:
        """One frame through every stage; frames of one stream must come in order (tracking)."""
        self._index = frame.index + 1
        t_start = time.perf_counter()
        faces: Faces = self.detector.detect(frame.image)
        t_detect = time.perf_counter()
        n = len(faces)
        if n:
            gray = to_gray(frame.image)  # (H, W) uint8, once per frame for all faces
            spec, policy = self.card.input, self.card.crop
            crops = np.stack([crop_face(gray, faces.xyxy[i], spec, policy, faces.keypoints[i]) for i in range(n)])
            x = to_model_input(crops, spec)  # (n, h, w, 1) float32
            t_pre = time.perf_counter()
            probs = self.classifier.classify_inputs(x)  # (n, C) float32
        else:
            t_pre = time.perf_counter()
            probs = np.zeros((0, len(self.labels)), np.float32)
        t_cls = time.perf_counter()
        tracks = self.tracker.update(faces.xyxy, probs, t=frame.t)
        t_end = time.perf_counter()
        timings = StageTimings(detect_ms=(t_detect - t_start) * 1e3, preprocess_ms=(t_pre - t_detect) * 1e3,
                               classify_ms=(t_cls - t_pre) * 1e3, track_ms=(t_end - t_cls) * 1e3,
                               total_ms=(t_end - t_start) * 1e3)
        return FrameResult(frame=frame, faces=faces, track_ids=tracks.ids, probs=tracks.probs,
                           labels=self.labels, timings=timings, label_index=tracks.label_index)
