"""The per-frame pipeline: detect -> crop (shared preprocessing) -> classify -> track/smooth.

    from edge import Pipeline
    with Pipeline.from_defaults(scan="frame") as pipe:
        result = pipe.process(image_bgr)      # FrameResult, timings per stage in ms

Every stage is built once. Only the face regions are converted to gray (or the whole frame
once, when faces cover much of it); each face is cropped with the model sidecar's CropPolicy, all
crops go through `to_model_input` and one classifier call, which turns pixels into the int8 input
with a lookup table. `detect` and `classify` are the two halves of `process_frame`, so that
`DetectAhead` can run them on two threads; `stages()` picks the driver of a frame loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from edge.classify.classifier import EmotionClassifier
from edge.detect.confirm import uncertain
from edge.detect.factory import DetectorConfig, FaceDetector, make_detector
from edge.interpreter import DEFAULT_THREADS
from edge.classify.preprocess import crop_face, crop_window, to_gray, to_model_input
from edge.track.tracker import Tracker, TrackerConfig
from edge.types import Faces, Frame, FrameResult, StageTimings

log = logging.getLogger(__name__)


# Threads that run the stages of the frame loop: 2 detects frame N+1 while frame N is classified,
# tracked, drawn and written (see DetectAhead): more frames/s, at the price of some latency
# (`fer-edge bench --workers 1|2`; docs/benchmarks.md). --workers 1 for the lowest latency.
DEFAULT_WORKERS = 2


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Every setting of a Pipeline: the detector's, the tracker's, and the classifier's and frame loop's own.

    `config.replace(scan="frame", smooth=False)` changes settings by name wherever they live.
    """

    detector: DetectorConfig = field(default_factory=DetectorConfig)  # which detector, how it scans
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # track ids, smoothing, label hysteresis
    emotion_model: str | None = None  # None: the shipped models/emotion_int8.tflite
    threads: int | None = None  # interpreter threads per model; None: DEFAULT_THREADS (tiles: up to 2)
    workers: int | None = None  # frame-loop threads (`stages`): 1 or 2; None: DEFAULT_WORKERS
    # One classifier call for all faces of a frame. Its cost grows with the faces just as calls
    # one by one do (a tie, docs/benchmarks.md, *Runtime settings and their measurements*);
    # batched for one interpreter call per frame and its slightly steadier tail.
    batch: bool = True
    # flip: average each face with its mirror image (edge.classify.classifier.TTA): more accurate
    # (docs/benchmarks.md, the results table) for a second classifier pass per face, a cost that
    # is the user's to choose.
    tta: str = "none"

    def replace(self, **changes) -> "PipelineConfig":
        """A copy with `changes`, each named like a field of PipelineConfig, DetectorConfig or
        TrackerConfig (the names do not overlap). TypeError for any other name."""
        own = {k: v for k, v in changes.items() if k in _OWN_FIELDS}
        detector = {k: v for k, v in changes.items() if k in _DETECTOR_FIELDS}
        tracker = {k: v for k, v in changes.items() if k in _TRACKER_FIELDS}
        unknown = sorted(set(changes) - set(own) - set(detector) - set(tracker))
        if unknown:
            known = sorted(_OWN_FIELDS | _DETECTOR_FIELDS | _TRACKER_FIELDS)
            raise TypeError(f"unknown PipelineConfig field(s): {', '.join(unknown)}; known: {', '.join(known)}")
        base_detector, base_tracker = own.pop("detector", self.detector), own.pop("tracker", self.tracker)
        if not isinstance(base_detector, DetectorConfig) or not isinstance(base_tracker, TrackerConfig):
            raise TypeError("detector takes a DetectorConfig and tracker a TrackerConfig (the detector backend "
                            "is backend=\"blazeface\" or \"mediapipe\")")
        return replace(self, detector=replace(base_detector, **detector), tracker=replace(base_tracker, **tracker),
                       **own)

    def make_detector(self) -> FaceDetector:
        """The detector these settings describe. Raises ModelNotFoundError / ValueError."""
        return make_detector(self.detector, threads=self.threads)

    def make_classifier(self) -> EmotionClassifier:
        """The emotion classifier these settings describe. Raises SidecarError / FileNotFoundError."""
        from edge.models.registry import default_emotion_model

        path = Path(self.emotion_model) if self.emotion_model else default_emotion_model()
        threads = self.threads if self.threads is not None else DEFAULT_THREADS
        return EmotionClassifier(path, num_threads=threads, batch=self.batch, tta=self.tta)


_OWN_FIELDS = frozenset(f.name for f in fields(PipelineConfig))
_DETECTOR_FIELDS = frozenset(f.name for f in fields(DetectorConfig))
_TRACKER_FIELDS = frozenset(f.name for f in fields(TrackerConfig))


class Pipeline:
    """`result = pipeline.process(image_bgr)`; a context manager that closes its models."""

    def __init__(self, config: PipelineConfig, detector: FaceDetector, classifier: EmotionClassifier):
        self.config = config
        self.detector = detector
        self.classifier = classifier
        self.card = classifier.card
        self.labels: tuple[str, ...] = tuple(classifier.labels)
        self.tracker = Tracker(config.tracker)
        spec = self.card.input
        self._pixel_spec = replace(spec, mean=0.0, std=1.0)
        self._crops = np.empty((8, spec.height, spec.width), np.uint8)  # reused; grows with the face count
        self._index = 0
        self._t0 = time.monotonic()
        # The faces and raw probabilities (n, C) of the last frame classified: a frame whose faces
        # the detector carried (the same object again) keeps them (`classify`).
        self._last: tuple[Faces, np.ndarray] | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig) -> "Pipeline":
        """Build the detector and classifier once. Raises ModelNotFoundError / SidecarError."""
        classifier = config.make_classifier()
        return cls(config, config.make_detector(), classifier)

    @classmethod
    def from_defaults(cls, **overrides) -> "Pipeline":
        """`Pipeline.from_defaults(backend="mediapipe", smooth=False)`: the default PipelineConfig
        with `overrides` (PipelineConfig.replace)."""
        return cls.from_config(PipelineConfig().replace(**overrides))

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.detector.close()

    def reset(self) -> None:
        """Forget all tracks and the faces the detector remembers (a new, unrelated video or still)."""
        self.tracker.reset()
        self.detector.reset()
        self._last = None

    def process(self, image_bgr: np.ndarray, *, index: int | None = None, t: float | None = None,
                source: str = "") -> FrameResult:
        """image_bgr: (H, W, 3) uint8 BGR -> FrameResult (boxes in this image's pixels)."""
        if index is None:
            index = self._index
        if t is None:
            t = time.monotonic() - self._t0
        return self.process_frame(Frame(image=image_bgr, index=index, t=t, source=source))

    def _face_pixels(self, image_bgr: np.ndarray, faces: Faces) -> np.ndarray:
        """(n, h, w) uint8 model-input pixels of every face: cropped with the sidecar's policy and
        passed through the shared preprocessing, all but its final `(p - mean) / std`, which the
        classifier applies with a lookup table (EmotionClassifier.classify_pixels)."""
        n = len(faces)
        spec, policy = self.card.input, self.card.crop
        if self._crops.shape[0] < n:
            self._crops = np.empty((max(n, 2 * self._crops.shape[0]), spec.height, spec.width), np.uint8)
        crops = self._crops[:n]
        h, w = image_bgr.shape[:2]
        windows = [crop_window(faces.xyxy[i], policy, h, w) for i in range(n)]  # frame px each crop samples
        area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows)
        if area >= 0.5 * h * w:  # faces cover much of the frame: one conversion is cheaper
            gray = to_gray(image_bgr)
            for i in range(n):
                crops[i] = crop_face(gray, faces.xyxy[i], spec, policy, faces.keypoints[i])
        else:  # gray conversion of the face windows only: far fewer pixels than the whole frame
            for i, (x0, y0, x1, y1) in enumerate(windows):
                # crop_face works in its window's coordinates, so this gives the same pixels.
                offset = np.array([x0, y0], np.float32)
                crops[i] = crop_face(to_gray(image_bgr[y0:y1, x0:x1]), faces.xyxy[i] - np.tile(offset, 2),
                                     spec, policy, faces.keypoints[i] - offset)
        # With mean 0 and std 1 the shared preprocessing returns its uint8 pixels (as float32).
        return to_model_input(crops, self._pixel_spec)[..., 0].astype(np.uint8)

    def process_frame(self, frame: Frame) -> FrameResult:
        """One frame through every stage; frames of one stream must come in order (tracking)."""
        return self.classify(self.detect(frame))

    def detect(self, frame: Frame, fresh: bool = False) -> Detection:
        """The detection stage alone. fresh: the frame starts a new, unrelated stream (a still),
        so the detector forgets what it saw and `classify` resets the tracker."""
        if fresh:
            self.detector.reset()
        t_start = time.perf_counter()
        faces: Faces = self.detector.detect(frame.image)
        return Detection(frame=frame, faces=faces, detect_ms=(time.perf_counter() - t_start) * 1e3, fresh=fresh)

    def classify(self, detection: Detection) -> FrameResult:
        """Crop, classify and track the faces of one detected frame; call in frame order."""
        frame, faces = detection.frame, detection.faces
        if detection.fresh:
            self.tracker.reset()
            self._last = None
        self._index = frame.index + 1
        t_detect = time.perf_counter()
        n = len(faces)
        last = self._last
        if last is not None and last[0] is faces:
            # The very Faces object of the frame before: the detector carried them, as this frame
            # stands still since its last pass (edge.detect.motion.StillCarry). Their crops differ
            # from that frame's by little more than sensor and codec noise, so they keep its
            # classification too (at most carry_frames frames in a row, as the faces;
            # --carry-frames 0 classifies every frame).
            t_pre = time.perf_counter()
            probs = last[1]
        elif n:
            pixels = self._face_pixels(frame.image, faces)
            t_pre = time.perf_counter()
            probs = self.classifier.classify_pixels(pixels)  # (n, C) float32
        else:
            t_pre = time.perf_counter()
            probs = np.zeros((0, len(self.labels)), np.float32)
        t_cls = time.perf_counter()
        self._last = (faces, probs)
        tracks = self.tracker.update(faces.xyxy, probs, t=frame.t)
        t_end = time.perf_counter()
        timings = StageTimings(detect_ms=detection.detect_ms, preprocess_ms=(t_pre - t_detect) * 1e3,
                               classify_ms=(t_cls - t_pre) * 1e3, track_ms=(t_end - t_cls) * 1e3,
                               total_ms=detection.detect_ms + (t_end - t_detect) * 1e3)
        return FrameResult(frame=frame, faces=faces, track_ids=tracks.ids, probs=tracks.probs,
                           labels=self.labels, timings=timings, label_index=tracks.label_index, raw_probs=probs,
                           uncertain=uncertain(faces.xyxy, faces.keypoints))


@dataclass(frozen=True, slots=True)
class Detection:
    """What the detection stage hands to the rest of the pipeline."""

    frame: Frame
    faces: Faces
    detect_ms: float
    fresh: bool = False  # the detector was reset for this frame: reset the tracker too


class FrameSource(Protocol):
    """Frames in order; `live` (optional, default False): a camera or stream that gives its newest
    frame, dropping those the loop had no time for (edge.capture.thread.Capture)."""

    def read(self, after: int = -1, timeout_s: float | None = None) -> Frame | None: ...


class DetectAhead:
    """Two threads: detect frame N+1 on a worker while the caller classifies, tracks and outputs frame N.

        with DetectAhead(pipeline, capture) as ahead:
            while (result := ahead.next()) is not None: ...

    `source.read(after=index, timeout_s=...)` is called on the worker only (edge.capture.thread.Capture
    fits: a live source gives its newest frame, a file every frame). Results come out in frame
    order, and the tracker sees every frame in order, on the caller's thread. The detector's
    interpreters are used by the worker only, the classifier's by the caller only (LiteRT and
    OpenCV release the GIL while they compute, so the two overlap on two cores). Frames in flight
    (detected or being detected, not yet taken): LIVE_IN_FLIGHT from a live source, the one the
    caller is about to take and the next, so its latency does not grow; from a file up to
    FILE_IN_FLIGHT, the extra ones only while the caller finds no detected frame waiting (the
    worker is the slower side). Errors of the source (EndOfStream, SourceError) and of detection
    are raised by `next` in frame order. fresh(frame) -> True: the frame starts a new, unrelated
    stream (a still, a rewound file), so detector memory and tracks are reset for it.
    """

    # A file's extra frames in flight let the worker go on detecting while the caller is slow on a
    # frame and the caller go on while the worker is (a level window). A frame that stands still is
    # cheap on both threads and a detected one dear on both, so with one extra frame the worker
    # often sat idle through the caller's dear frame; a second one keeps it busy: more frames/s for
    # a little more latency per frame (docs/benchmarks.md, *Runtime settings and their
    # measurements*). A live source keeps two, so that what is shown stays as close to the camera
    # as it can.
    FILE_IN_FLIGHT = 4
    LIVE_IN_FLIGHT = 2
    workers = 2

    def __init__(self, pipeline: Pipeline, source: FrameSource, *, fresh: Callable[[Frame], bool] | None = None,
                 poll_s: float = 0.1, join_timeout_s: float = 5.0):
        self.pipeline = pipeline
        self.source = source
        self.in_flight = self.LIVE_IN_FLIGHT if getattr(source, "live", False) else self.FILE_IN_FLIGHT
        self.fresh = fresh
        self._poll_s = poll_s
        self._join_timeout_s = join_timeout_s
        self._stop = threading.Event()
        self._credits = threading.Semaphore(0)  # frames the worker may still detect
        self._done: queue.Queue = queue.Queue()  # (Detection | BaseException), in frame order
        self._in_flight = 0  # granted and not yet taken by next()
        self._idle = threading.Condition()
        self._failed = False
        self._thread = threading.Thread(target=self._work, name="fer-edge-detect", daemon=True)

    def __enter__(self) -> "DetectAhead":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker and join it; frames in flight are dropped."""
        self._stop.set()
        self._credits.release()
        if self._thread.is_alive():
            self._thread.join(self._join_timeout_s)
            if self._thread.is_alive():
                log.warning("detection thread did not stop within %.1f s", self._join_timeout_s)

    def _work(self) -> None:
        last = -1
        while not self._stop.is_set():
            if not self._credits.acquire(timeout=self._poll_s) or self._stop.is_set():
                continue
            try:
                while not self._stop.is_set():
                    frame = self.source.read(after=last, timeout_s=self._poll_s)
                    if frame is not None:
                        last = frame.index
                        fresh = bool(self.fresh(frame)) if self.fresh is not None else False
                        self._done.put(self.pipeline.detect(frame, fresh=fresh))
                        break
            except BaseException as exc:  # handed to the caller, in order; the worker ends
                self._done.put(exc)
                self._stop.set()
            finally:
                with self._idle:
                    self._idle.notify_all()

    def next(self, timeout_s: float | None = None) -> FrameResult | None:
        """The next frame's result, in order; None when no frame came within timeout_s (default:
        the poll interval), so a window can still handle its events."""
        if self._failed:
            raise RuntimeError("DetectAhead already raised its source's error")
        # A detected frame already waiting means the worker keeps ahead of this thread: more in
        # flight would only make frames wait longer. The file's extra frames go out only while
        # this thread waits for the worker.
        limit = self.in_flight if self._done.empty() else min(self.in_flight, self.LIVE_IN_FLIGHT)
        while self._in_flight < limit and not self._stop.is_set():
            self._credits.release()
            self._in_flight += 1
        try:
            item = self._done.get(timeout=self._poll_s if timeout_s is None else timeout_s)
        except queue.Empty:
            return None
        self._in_flight -= 1
        if isinstance(item, BaseException):
            self._failed = True
            raise item
        return self.pipeline.classify(item)

    def settle(self) -> None:
        """Wait until the worker has finished the frame it is detecting (benchmarks: so that no
        work of this pipeline runs while something else is being measured)."""
        with self._idle:
            self._idle.wait_for(lambda: self._done.qsize() >= self._in_flight or self._stop.is_set())


class InlineStages:
    """Every stage on the caller's thread, with the same `next()` as DetectAhead (workers=1)."""

    workers = 1

    def __init__(self, pipeline: Pipeline, source: FrameSource, *, fresh: Callable[[Frame], bool] | None = None,
                 poll_s: float = 0.1):
        self.pipeline = pipeline
        self.source = source
        self.fresh = fresh
        self._poll_s = poll_s
        self._last = -1

    def __enter__(self) -> "InlineStages":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def next(self, timeout_s: float | None = None) -> FrameResult | None:
        """Read, detect, classify and track the next frame; None when none came within timeout_s."""
        frame = self.source.read(after=self._last, timeout_s=self._poll_s if timeout_s is None else timeout_s)
        if frame is None:
            return None
        self._last = frame.index
        fresh = bool(self.fresh(frame)) if self.fresh is not None else False
        return self.pipeline.classify(self.pipeline.detect(frame, fresh=fresh))

    def settle(self) -> None:
        """Nothing runs in the background here."""


def stages(pipeline: Pipeline, source: FrameSource, workers: int | None = None, *,
           fresh: Callable[[Frame], bool] | None = None) -> InlineStages | DetectAhead:
    """The frame loop's driver: 1 worker runs every stage on the caller's thread, 2 detect on a
    second thread one frame ahead (DetectAhead). None: the pipeline's config.workers, else
    DEFAULT_WORKERS."""
    if workers is None:
        workers = pipeline.config.workers if pipeline.config.workers is not None else DEFAULT_WORKERS
    if workers not in (1, 2):
        raise ValueError(f"workers must be 1 or 2, got {workers}")
    if workers == 1:
        return InlineStages(pipeline, source, fresh=fresh)
    return DetectAhead(pipeline, source, fresh=fresh)
