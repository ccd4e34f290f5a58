"""The second look that confirms a candidate face, and the rule that turns candidates into faces.

**The second look.** Textures, lamps and the backs of heads fire the network at 0.5-0.7 in one
view, while a real face scores high again when it is looked at on its own, zoomed to the size the
network likes best. `SecondLook.confirms(image, box)` runs two region-of-interest windows
(edge.detect.windows) on a candidate box, in which the candidate is 72 and then 48 input px wide,
and says yes when both find a face on it at >= `verify_score`, or the first (the network's
favourite zoom) at >= the caller's sure score. `accept` is the rule every scan uses to turn
candidates into faces (confirmation instead of one global threshold):

- a candidate that continues a face of the last frames (a known track) is kept from `keep_score`;
- a new one is kept when it scores >= `sure_score`, or when its keypoints look like a face's (the
  eyes far enough apart for its box, `face_geometry`) and the second look confirms it; under
  `keep_score` (the caller's candidates start lower), the second look must also find it in a
  window in which it is only `SMALL_LOOK_PX` wide, the smallest face the network finds reliably;
- new candidates are taken from the highest score down, and one whose centre lies inside the box
  of a face already kept, larger but not 4x larger (`part_of`: a box on its nose or an eye), is
  dropped without a look: the windows of a scan see one face at several zooms, and such boxes
  overlap the face's too little for the non-maximum suppression to merge them.

`uncertain` marks faces turned too far for an expression label (a profile), from the keypoints.
"""

from __future__ import annotations

import numpy as np

from edge.boxes import iou_matrix, match_boxes
from edge.detect.blazeface import check_score, logit
from edge.detect.windows import FrameLevels, WindowNets, roi_window

TRACK_IOU = 0.3  # a detection continues a remembered face (or confirms a candidate) at this IoU
# The second look: both windows (candidate 72 and 48 input px wide) must find the candidate at
# >= VERIFY_SCORE. On group scenes it cut false positives for far fewer lost faces than raising the
# threshold alone to the same precision (docs/detection.md, *Settings and their measurements*).
# The 72 px window comes first: it is the zoom the network scores faces highest at (edge.detect.
# windows.ROI_FACE_INPUT_PX), and a candidate that is sure there (>= the caller's sure score) is
# confirmed without the 48 px one, as a candidate sure in its own window needs no look at all. Many
# partly hidden or turned faces score well only near that zoom, while textures rarely reach it.
VERIFY_SCORE = 0.6
VERIFY_FACE_PX = (72, 48)
# A new candidate under the score threshold must also be found in a window in which it is this
# small: a real face is, while the text of a test card that passes both windows above is not.
SMALL_LOOK_PX = (32,)
# Only candidates at least this many frame px wide get that window: smaller real faces (a crowd's)
# have too little detail left at 32 input px, and shrinking them costs many of them.
SMALL_LOOK_MIN_PX = 64
# A box inside a kept face and at least this share of its side is a part of that face (an eye, the
# nose, the mouth: `part_of`); a smaller one may be a face of its own.
PART_MIN_RATIO = 0.25
# The cheap face check on BlazeFace's keypoints: the distance between the eyes, over the box
# width. Nearly all real faces (the wild photos, upscaled FER-2013 crops) lie above it, the clock of
# a green test card that the second look confirmed lies below (docs/detection.md, *Settings and
# their measurements*). A new face that needs the second look must pass this check first.
MIN_EYE_RATIO = 0.32
# The same check for boxes from SMALL_LOOK_MIN_PX up: their keypoints are precise enough for a
# tighter bound, which real photos' faces still pass with room (the test card's clock came within
# reach of the lower one), while small crowd faces, whose keypoints scatter more, keep the lower one.
MIN_EYE_RATIO_LARGE = 0.35
# A face whose nose lies this far (in eye distances) to the side of the eyes' midpoint is turned
# too far for the expression classifier (above nearly every frontal face of the wild photos, docs/
# detection.md, *Settings and their measurements*): its state is "uncertain".
UNCERTAIN_YAW = 0.45


class SecondLook:
    """`second_look.confirms(image_bgr, box)`: whether a candidate face box is found again, at
    >= verify_score, in each of the zoomed windows in which it is `face_px` input px wide (in that
    order), or at >= sure_score in one of them."""

    def __init__(self, nets: WindowNets, verify_score: float = VERIFY_SCORE,
                 face_px: tuple[float, ...] = VERIFY_FACE_PX):
        self.verify_score = check_score("verify_score", verify_score)
        self.nets = nets
        self.face_px = tuple(float(p) for p in face_px)
        self._logit = logit(self.verify_score)
        self.looks = 0  # windows run so far (for reports)

    def confirms(self, image_bgr: np.ndarray | FrameLevels, box: np.ndarray, face_px: tuple[float, ...] | None = None,
                 sure_score: float | None = None) -> bool:
        """face_px: the windows' face widths, input px (None: the second look's own); sure_score: a
        window that finds the box at least this high confirms it at once (None: every window runs).
        Stops at the first window that does not find it."""
        for px in self.face_px if face_px is None else face_px:
            score = self.score(image_bgr, box, px)
            if score < self.verify_score:
                return False
            if sure_score is not None and score >= sure_score:
                return True
        return True

    def score(self, image_bgr: np.ndarray | FrameLevels, box: np.ndarray, face_px: float) -> float:
        """The best score of a detection on `box` (IoU > TRACK_IOU) in the window in which the box is
        face_px input px wide; 0 when there is none at >= verify_score."""
        self.looks += 1
        found, _, scores = self.nets.run(image_bgr, roi_window(box, face_px), self._logit)
        if not len(found):
            return 0.0
        on_box = iou_matrix(np.asarray(box, np.float32)[None], found)[0] > TRACK_IOU
        return float(scores[on_box].max()) if on_box.any() else 0.0


def face_geometry(xyxy: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eye_ratio (n,), yaw (n,)) of boxes (n, 4) and keypoints (n, 6, 2) in frame px: the eye
    distance over the box width, and the nose's offset from the eyes' midpoint along x, in eye
    distances (0: frontal; its sign says which way the face is turned)."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, 6, 2)
    d = keypoints[:, 1] - keypoints[:, 0]
    eyes = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])  # np.linalg.norm's arithmetic, without its dispatch
    width = np.maximum(xyxy[:, 2] - xyxy[:, 0], 1.0)
    mid_x = (keypoints[:, 0, 0] + keypoints[:, 1, 0]) / 2.0
    return eyes / width, (keypoints[:, 2, 0] - mid_x) / np.maximum(eyes, 1.0)


def uncertain(xyxy: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(n,) bool: faces turned too far for an expression label (|yaw| >= UNCERTAIN_YAW)."""
    return np.abs(face_geometry(xyxy, keypoints)[1]) >= UNCERTAIN_YAW


def part_of(box: np.ndarray, faces: np.ndarray) -> bool:
    """Whether a box (4,) is part of one of the faces (m, 4), all xyxy: its centre lies inside a
    face's box that is at least as large and at most 1 / PART_MIN_RATIO times larger. The windows
    of a scan see one face at several zooms, and a box on its nose, an eye or the mouth overlaps the
    face's box too little for the non-maximum suppression to merge them; two faces would have to
    hide each other by half. A larger box around a smaller face is not dropped by this (the smaller
    one may be the part), nor a much smaller one: a face far behind, or inside a false box."""
    if not len(faces):
        return False
    centre = (box[:2] + box[2:]) / 2.0
    inside = np.all((faces[:, :2] <= centre) & (centre <= faces[:, 2:]), axis=1)
    side, face_side = np.max(box[2:] - box[:2]), np.max(faces[:, 2:] - faces[:, :2], axis=1)
    return bool((inside & (face_side >= side) & (PART_MIN_RATIO * face_side <= side)).any())


def accept(image_bgr: np.ndarray | FrameLevels, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
           known_xyxy: np.ndarray, *, keep_score: float, sure_score: float, second_look: SecondLook | None
           ) -> np.ndarray:
    """(n,) bool: which candidates (boxes (n, 4) and keypoints (n, 6, 2) frame px, scores (n,)) are
    faces. A candidate that overlaps a known face (known_xyxy (m, 4): faces of the last frames) by
    TRACK_IOU continues it from keep_score; a new one needs sure_score, or the keypoint check
    (MIN_EYE_RATIO; MIN_EYE_RATIO_LARGE from SMALL_LOOK_MIN_PX) and the second look (None: never
    confirmed); one under keep_score must also be found in a window in which it is SMALL_LOOK_PX
    wide. New candidates are decided from the highest score down, and one that is `part_of` a face
    already kept is dropped without a look."""
    keep = np.zeros(len(scores), bool)
    known = np.zeros(len(scores), bool)
    if len(known_xyxy) and len(scores):
        det, _, _ = match_boxes(boxes, known_xyxy, TRACK_IOU)
        known[det] = True
    keep[known] = scores[known] >= keep_score
    eye_ratio = face_geometry(boxes, keypoints)[0] if len(scores) else np.zeros(0, np.float32)
    box_side = np.max(boxes[:, 2:4] - boxes[:, 0:2], axis=1) if len(scores) else np.zeros(0, np.float32)
    min_eye_ratio = np.where(box_side >= SMALL_LOOK_MIN_PX, MIN_EYE_RATIO_LARGE, MIN_EYE_RATIO)
    new = np.flatnonzero(~known)
    for i in new[np.argsort(-scores[new], kind="stable")]:
        if part_of(boxes[i], boxes[keep]):
            continue
        if scores[i] >= sure_score:
            keep[i] = True
        elif second_look is not None and eye_ratio[i] >= min_eye_ratio[i]:
            # the caller's candidates may start below keep_score
            keep[i] = second_look.confirms(image_bgr, boxes[i], sure_score=sure_score)
            if keep[i] and scores[i] < keep_score and box_side[i] >= SMALL_LOOK_MIN_PX:
                # Under keep_score the two looks are not enough (the timestamp of Chromium's fake
                # camera passes them): a face is still found when it is small in its window, a
                # texture that fires the network at one zoom is not.
                keep[i] = second_look.confirms(image_bgr, boxes[i], SMALL_LOOK_PX)
    return keep
