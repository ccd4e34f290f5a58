"""What a detector is (`FaceDetector`), the settings that choose one (`DetectorConfig`), and the factory.

    with make_detector(DetectorConfig(scan="frame", score_threshold=0.5)) as detector:
        faces = detector.detect(image_bgr)

scan "frame" runs the whole frame through the network once (edge.detect.frame) and keeps what
scores at least the threshold; "tiles" runs the short-range model over the coarse frame, a
pyramid of windows and windows around known faces, finds faces down to `min_face_px`, and keeps a
new face only when it is sure or a second look confirms it (edge.detect.tiling); "auto" is
"tiles" with the short-range BlazeFace backend and "frame" elsewhere. Either is wrapped in the
still-frame carry (edge.detect.motion.StillCarry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge.detect.frame import DEFAULT_SCORE_THRESHOLD, BlazeFaceDetector, MediaPipeDetector
from edge.detect.motion import CARRY_FRAMES, StillCarry
from edge.detect.tiling import TILES_PER_FRAME, TILES_SCORE_THRESHOLD, TiledDetector
from edge.detect.windows import FrameLevels
from edge.interpreter import DEFAULT_THREADS
from edge.types import Faces

BACKENDS = ("blazeface", "mediapipe")
RANGES = ("short", "full")
SCANS = ("auto", "frame", "tiles")


class FaceDetector(Protocol):
    """What the pipeline needs of a detector: faces in a frame (an (H, W, 3) uint8 BGR image, or
    its edge.detect.windows.FrameLevels, whose halvings the detector then shares with the caller;
    the very Faces object of the last call again means the same faces on a frame that stands still,
    whose classification the pipeline keeps); forget remembered faces (a new, unrelated stream);
    release the interpreters."""

    def detect(self, image_bgr: np.ndarray | FrameLevels) -> Faces: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Which face detector to build, and how it scans (`make_detector`)."""

    backend: str = "blazeface"  # blazeface (our LiteRT decoder) | mediapipe (MediaPipe Tasks)
    range: str = "short"  # short (faces within ~2 m) | full (up to ~5 m)
    # The .tflite, or a directory holding the official file name; None: FER_EDGE_MODEL_DIR, then
    # the user cache (edge.models).
    model_path: str | None = None
    scan: str = "auto"  # auto | frame | tiles (see the module doc)
    # Confidence below which a face is dropped; None: the scan's default (`threshold`).
    score_threshold: float | None = None
    min_face_px: float = 40.0  # smallest face side the tiles look for, frame px
    tiles_per_frame: int = TILES_PER_FRAME  # level windows scanned per streamed frame (edge.detect.tiling)
    # Frames in a row a sure face keeps its detection while its surroundings stand still; 0: the
    # network runs on every frame (edge.detect.motion).
    carry_frames: int = CARRY_FRAMES

    @property
    def tiled(self) -> bool:
        """Whether these settings build the tiled scan (else one whole-frame pass)."""
        return self.scan == "tiles" or (self.scan == "auto" and self.backend == "blazeface" and self.range == "short")

    @property
    def threshold(self) -> float:
        """The score threshold the detector uses: score_threshold, else the scan's default
        (DEFAULT_SCORE_THRESHOLD whole-frame, TILES_SCORE_THRESHOLD tiled)."""
        if self.score_threshold is not None:
            return float(self.score_threshold)
        return TILES_SCORE_THRESHOLD if self.tiled else DEFAULT_SCORE_THRESHOLD

    def check(self) -> None:
        """ValueError, saying what to choose instead, for settings no detector runs with."""
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown detector backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.range not in RANGES:
            raise ValueError(f"unknown detector range {self.range!r}; choose one of {', '.join(RANGES)}")
        if self.scan not in SCANS:
            raise ValueError(f"unknown scan {self.scan!r}; choose one of {', '.join(SCANS)}")
        if self.backend == "mediapipe" and self.range != "short":
            raise ValueError("the mediapipe backend runs only the short-range model; "
                             "use --detector blazeface for --range full")
        if self.scan == "tiles" and (self.backend != "blazeface" or self.range != "short"):
            raise ValueError("tiles run the short-range model on the blazeface backend; "
                             "use --range short --detector blazeface, or --scan frame")


def make_detector(config: DetectorConfig | None = None, *, threads: int | None = None) -> FaceDetector:
    """The detector `config` describes (default: DetectorConfig()). The model file: config.model_path,
    else edge.models' lookup (FER_EDGE_MODEL_DIR, then the user cache); ModelNotFoundError says how
    to get it, ValueError names settings that do not go together.

    threads: interpreter threads of each network; None: DEFAULT_THREADS for the whole-frame pass and
    the 128x128 windows, and up to 2 for the tiled scan's larger windows.
    """
    config = config if config is not None else DetectorConfig()
    config.check()
    from edge.models.registry import resolve_detector_model

    # An explicit path is checked too, so a wrong --detector-model gets the same how-to message.
    model_path = resolve_detector_model(config.range, config.model_path)
    small_threads = threads if threads is not None else DEFAULT_THREADS
    if config.tiled:
        detector = TiledDetector(model_path, score_threshold=config.threshold, num_threads=threads,
                                 min_face_px=config.min_face_px, tiles_per_frame=config.tiles_per_frame,
                                 carry_frames=config.carry_frames, small_threads=small_threads)
    else:
        cls = BlazeFaceDetector if config.backend == "blazeface" else MediaPipeDetector
        detector = cls(model_path, full_range=(config.range == "full"), score_threshold=config.threshold,
                       num_threads=small_threads)
    return StillCarry(detector, config.carry_frames)
