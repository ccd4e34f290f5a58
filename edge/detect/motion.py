"""What changed between the frames of a stream, and the detections that may be carried over.

Change is measured on a gray thumbnail of THUMB_DIV x THUMB_DIV means (which also average sensor
grain away): a part of the frame "stands still" when fewer than CHANGE_MIN_PX of its thumbnail
pixels moved by more than CHANGE_LEVEL gray levels since it was last looked at (`still`). A sure
face (`carriable`) whose surroundings stand still may keep its last detection instead of running
the network again, for at most `carry_frames` frames in a row:

- the tiled detector (edge.detect.tiling) carries remembered faces one by one, and ranks its tiles by
  change (its motion prior);
- `StillCarry` wraps a whole-frame detector: while the whole frame stands still and every face of
  the last pass is carriable, it returns that pass's faces again. A frame that stands still shows no
  new face, so nothing is skipped that the network would have found.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge.detect.windows import FrameLevels
from edge.types import Faces

THUMB_DIV = 8  # the thumbnail is this many times smaller than the frame on each side (a power of 2)
_HALVINGS = THUMB_DIV.bit_length() - 1
assert THUMB_DIV == 1 << _HALVINGS and _HALVINGS >= 1, "THUMB_DIV must be a power of 2"
CHANGE_LEVEL = 16  # gray levels by which a thumbnail pixel must change to count
CHANGE_MIN_PX = 6  # changed thumbnail pixels from which a part of the frame has changed (a 32 px face covers 16)
# A sure face whose surroundings stand still keeps its detection for at most this many frames in
# a row: a still crowd (a classroom) then skips most of its regions' windows, and a one-face video
# in slow pan and zoom most of its network passes (docs/detection.md, *Settings and their
# measurements*). (Unsure faces are looked at again on every frame, so a false detection is not
# carried.)
CARRY_FRAMES = 2
# Carried faces are at least this wide: in the 8x thumbnail a smaller face spans too few pixels for
# a drift of a few pixels to show (without this bound group scenes lost small faces: docs/
# detection.md, *Settings and their measurements*).
CARRY_MIN_PX = 64
# A face the network scores at least this high is sure: it may be carried (and a tiled scan keeps
# a new face this sure without verifying it, edge.detect.tiling).
CONFIDENT_SCORE = 0.75


class Thumbnail:
    """`thumb = thumbnail(image_bgr)`: a frame's gray thumbnail, THUMB_DIV times smaller, which the
    change tests compare (`still`). The result is a reused buffer: copy what must outlive the next call."""

    def __init__(self, height: int, width: int):
        self.size = (max(1, width // THUMB_DIV), max(1, height // THUMB_DIV))  # cv2 (w, h)
        # The frame is cut to whole THUMB_DIV blocks, so each thumbnail pixel is the mean of one
        # block. The dropped edge (under THUMB_DIV px) maps past the thumbnail, where slices end anyway.
        self._crop = (min(height, self.size[1] * THUMB_DIV), min(width, self.size[0] * THUMB_DIV))  # (h, w)
        self.scale = (self.size[0] / self._crop[1], self.size[1] / self._crop[0])  # thumbnail px per frame px, (x, y)
        self._gray = np.zeros((self.size[1], self.size[0]), np.uint8)
        # Halving a side exactly with bilinear resampling averages 2x2 pixels, so log2(THUMB_DIV)
        # halvings give the block means (within rounding) at a fraction of the cost of one area
        # resize by THUMB_DIV, which OpenCV does not take on a fast path; colour goes to gray after
        # the first halving, on a quarter of the pixels. A frame smaller than one block has no
        # whole blocks and takes the plain area resize.
        # The first halving is the frame's own (FrameLevels.level(1)), which the detector's windows
        # use as well: the same 2x2 means, whose top-left part covers the cropped frame.
        self._grays = None
        if self._crop == (self.size[1] * THUMB_DIV, self.size[0] * THUMB_DIV):
            h, w = self._crop
            self._grays = [np.zeros((h >> i, w >> i), np.uint8) for i in range(1, _HALVINGS)] + [self._gray]
        else:
            self._small = np.zeros((self.size[1], self.size[0], 3), np.uint8)  # BGR

    def __call__(self, image: np.ndarray | FrameLevels) -> np.ndarray:
        """image: an (H, W, 3) uint8 BGR frame, or its FrameLevels (whose halving and thumbnail
        are then shared with the frame's other users) -> (H / THUMB_DIV, W / THUMB_DIV) uint8 gray."""
        levels = FrameLevels.of(image)
        if levels.gray_thumb is not None and levels.gray_thumb.shape == self._gray.shape:
            np.copyto(self._gray, levels.gray_thumb)
            return self._gray
        h, w = self._crop
        if self._grays is None:
            cv2.resize(levels.image[:h, :w], self.size, dst=self._small, interpolation=cv2.INTER_AREA)
            x = cv2.cvtColor(self._small, cv2.COLOR_BGR2GRAY, dst=self._gray)
        else:
            grays = self._grays
            x = cv2.cvtColor(levels.level(1)[:h // 2, :w // 2], cv2.COLOR_BGR2GRAY, dst=grays[0])
            for dst in grays[1:]:
                x = cv2.resize(x, dst.shape[::-1], dst=dst, interpolation=cv2.INTER_LINEAR)
        levels.gray_thumb = x
        return x


def still(thumb: np.ndarray, seen: np.ndarray) -> bool:
    """Whether two (parts of) thumbnails show the same thing: fewer than CHANGE_MIN_PX pixels moved
    by more than CHANGE_LEVEL gray levels."""
    return int(np.count_nonzero(cv2.absdiff(thumb, seen) > CHANGE_LEVEL)) < CHANGE_MIN_PX


def carriable(xyxy: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(n,) bool: which detections (xyxy (n, 4) frame px, scores (n,)) may be carried while their
    surroundings stand still: sure ones (>= CONFIDENT_SCORE), at least CARRY_MIN_PX wide."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    return (np.asarray(scores) >= CONFIDENT_SCORE) & (side >= CARRY_MIN_PX)


# The head around a face box, in face sides: hair, ears and the neck move with the face. Its
# changes are the followed face's, not a new one's (the tile schedule's motion prior ignores them).
# Wider margins hid small faces that walk in beside a followed one, narrower ones let a face's own
# fade ring wake the level window of a one-face video (docs/detection.md, *Settings and their
# measurements*).
HEAD_MARGIN = 0.35


def face_thumb_area(box_xyxy, scale: tuple[float, float], margin: float = 0.25) -> tuple[slice, slice]:
    """The thumbnail pixels (rows, columns) of a face box and `margin` of its side around it (a
    quarter: the face drifts between its detections). scale: thumbnail px per frame px, (x, y)."""
    sx, sy = scale
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    m = margin * max(x2 - x1, y2 - y1)
    return (slice(max(0, int((y1 - m) * sy)), max(0, int(math.ceil((y2 + m) * sy)))),
            slice(max(0, int((x1 - m) * sx)), max(0, int(math.ceil((x2 + m) * sx)))))


class StillCarry:
    """A whole-frame detector that skips frames which stand still.

    While a stream's frame has not changed in its thumbnail (`still`) since the wrapped detector
    last ran, and every face that run found is `carriable`, `detect` returns those faces again
    instead of running the network (the same Faces object, which tells the pipeline that their
    classification holds too), for at most `carry_frames` frames in a row. A still frame
    shows no new face, so nothing is missed that the network would have found. The first frame
    after `reset()` always runs.
    """

    def __init__(self, detector, carry_frames: int = CARRY_FRAMES):
        if carry_frames < 0:
            raise ValueError(f"carry_frames must be >= 0, got {carry_frames}")
        self.detector = detector
        self.carry_frames = int(carry_frames)
        self._shape: tuple[int, int] | None = None  # frame (h, w) the buffers below are for
        self._thumbnail: Thumbnail | None = None
        self._seen = np.zeros((0, 0), np.uint8)  # the thumbnail the network last ran on
        self._ran = False  # the network has run on this stream: _seen and _faces hold its last run
        self._faces = Faces.empty()
        self._carry_ok = False  # every face of the last run may be carried
        self._carried = 0  # frames carried since the network last ran
        self.carried_last_frame = False

    def __enter__(self) -> "StillCarry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.detector.close()

    def reset(self) -> None:
        """Forget the last frame: the next one runs the network (a new, unrelated stream)."""
        self._ran = False
        self.detector.reset()

    def detect(self, image_bgr: np.ndarray | FrameLevels) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame (or its FrameLevels), in frame pixels."""
        if self.carry_frames == 0:
            return self.detector.detect(image_bgr)
        levels = FrameLevels.of(image_bgr)  # the wrapped detector's windows use its halvings too
        shape = levels.shape[:2]
        if self._shape != shape:
            self._shape, self._thumbnail, self._ran = shape, Thumbnail(*shape), False
            self._seen = np.zeros(self._thumbnail.size[::-1], np.uint8)
        thumb = self._thumbnail(levels)
        self.carried_last_frame = (self._ran and self._carry_ok and self._carried < self.carry_frames
                                   and still(thumb, self._seen))
        if self.carried_last_frame:
            self._carried += 1
            return self._faces
        faces = self.detector.detect(levels)
        self._seen[:] = thumb
        self._ran, self._faces, self._carried = True, faces, 0
        self._carry_ok = bool(carriable(faces.xyxy, faces.score).all())
        return faces
