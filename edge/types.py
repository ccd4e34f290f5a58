"""Frozen dataclasses that flow between the pipeline's stages, with arrays in columns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    index: int  # strictly increasing per source
    t: float  # seconds: video position, or monotonic since start for live sources
    source: str = ""  # file path in image/folder mode, else ""


@dataclass(frozen=True, slots=True)
class Faces:
    xyxy: np.ndarray  # (n, 4) int32, frame pixels, clipped to the frame
    score: np.ndarray  # (n,) float32 detector confidence
    keypoints: np.ndarray  # (n, 6, 2) float32 frame pixels: right eye, left eye, nose, mouth, right ear, left ear

    def __post_init__(self):
        n = self.xyxy.shape[0]
        if self.xyxy.shape != (n, 4) or self.score.shape != (n,) or self.keypoints.shape != (n, 6, 2):
            raise ValueError(f"inconsistent Faces shapes: xyxy {self.xyxy.shape}, "
                             f"score {self.score.shape}, keypoints {self.keypoints.shape}")

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    @classmethod
    def empty(cls) -> "Faces":
        return cls(np.zeros((0, 4), np.int32), np.zeros((0,), np.float32), np.zeros((0, 6, 2), np.float32))


@dataclass(frozen=True, slots=True)
class StageTimings:
    """Milliseconds spent per stage on one frame."""

    detect_ms: float = 0.0
    preprocess_ms: float = 0.0
    classify_ms: float = 0.0
    track_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class FrameResult:
    frame: Frame
    faces: Faces
    track_ids: np.ndarray  # (n,) int64; -1 when tracking is off
    probs: np.ndarray  # (n, 7) float32, columns in the sidecar's label order (smoothed when on: the label's source)
    labels: tuple[str, ...]  # the sidecar's labels, column order of `probs`
    # (n,) int64 column in `probs` of the label shown per face: with smoothing on, label
    # hysteresis can hold a label that is not the argmax of `probs` for a few frames.
    label_index: np.ndarray
    timings: StageTimings = field(default_factory=StageTimings)
    # (n, 7) float32 this frame's own classifier output, before smoothing; None: the same as `probs`
    raw_probs: np.ndarray | None = None
    # (n,) bool faces turned too far for an expression label (edge.detect.confirm.uncertain); None: none
    uncertain: np.ndarray | None = None

    @property
    def emotions(self) -> list[str]:
        """Label per face (the held label when smoothing is on)."""
        return [self.labels[i] for i in self.label_index]

    @property
    def confidences(self) -> np.ndarray:
        """(n,) float32 probability of each face's label."""
        idx = self.label_index
        return self.probs[np.arange(len(idx)), idx].astype(np.float32)

    @property
    def probs_raw(self) -> np.ndarray:
        """(n, 7) float32 this frame's classifier output (equal to `probs` with smoothing off)."""
        return self.probs if self.raw_probs is None else self.raw_probs

    @property
    def is_uncertain(self) -> np.ndarray:
        """(n,) bool: faces turned too far for their label to be trusted."""
        return np.zeros(len(self.label_index), bool) if self.uncertain is None else self.uncertain
