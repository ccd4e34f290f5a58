"""Synthetic scenes with known faces: the ground truth for end-to-end accuracy.

The inputs of the scene, crowd, threshold and calibration benchmarks and of the runtime's
tests, apart from any benchmark's runner or report; the runtime itself never imports it.

FER-2013 crops (48x48 gray) are upscaled to several sizes and pasted, 1-4 at a time, at known
non-overlapping places on varied backgrounds; each face then drifts smoothly by a few pixels
per frame. The result is a video (or a still) plus its truth: per frame, per face, the
placed square in frame pixels, the label and the index of the source crop. Everything is
deterministic given the seed.

The placed square IS the FER-2013 framing: a crop of the frame at `box` resized to 48x48
gives back the source crop (up to interpolation and codec loss). A detector box is usually
smaller than that square (FER crops are tight, with some margin around the face), which is
what `benchmarks.scenes.calibrate` measures. So `match_placed_faces` counts a detection as a placed face
when it overlaps the square by IoU >= 0.3, or when it lies inside the square and is at least a
third of its side: in a loosely framed crop (hands on the cheeks, a profile, a small face in a
wide photo) the face fills half the square, and a tight box on it overlaps by IoU 0.1-0.3 while
being, by construction, a detection of that face (squares lie apart, backgrounds hold no faces).

Feathering: a pasted square with hard edges is an unnatural high-contrast frame around the
face that a detector may or may not latch on to. So the face is extended OUTSIDE its square
by a ring `feather` x side wide (edge pixels replicated outwards, lightly blurred) whose
alpha falls from 1 to 0 with a smoothstep (corners rounded, since the ramps of the two axes
multiply): the face fades into the scene while every pixel inside the square stays the
face's own. (Fading inside the square instead cost the classifier 16 points of agreement
with the original crops at 12%, on PublicTest faces with the provisional model: FER-2013
models use the crop's border.)

Truth files are JSON lines next to the video (`scene.mp4` -> `scene.truth.jsonl`): line 1 is
`{"meta": {...}}` (size, fps, frame count, seed, background, source split), then one line per
frame: `{"frame": i, "faces": [{"id", "box": [x1, y1, x2, y2], "label", "label_name", "src",
"angle"}]}`. `box` is the placed square in integer frame pixels, x2/y2 exclusive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edge.boxes import greedy_pairs, iou_matrix, match_boxes
from edge.capture.readers import video_frames
from edge.labels import LABELS

log = logging.getLogger(__name__)

BACKGROUNDS = ("gradient", "noise", "shapes", "room")
DEFAULT_FEATHER = 0.12  # fraction of the square's side that fades into the background


@dataclass(frozen=True, slots=True)
class SceneFace:
    id: int  # stable per track within one video
    box: tuple[int, int, int, int]  # placed square, x1, y1, x2, y2 (exclusive) in frame pixels
    label: int  # index into edge.labels.LABELS
    src: int  # index of the source crop in the faces array the scene was made from
    angle: float = 0.0  # degrees the face was rotated (counter-clockwise, as cv2) about the box centre
    occluded: float = 0.0  # fraction of the square's side hidden behind an occluder (group scenes)
    border: bool = False  # placed across a tile edge of the default tiling (group scenes)

    def to_json(self) -> dict:
        d = asdict(self)
        d["box"] = [int(v) for v in self.box]
        d["label_name"] = LABELS[self.label] if 0 <= self.label < len(LABELS) else str(self.label)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "SceneFace":
        return cls(id=int(d["id"]), box=tuple(int(v) for v in d["box"]), label=int(d["label"]),
                   src=int(d["src"]), angle=float(d.get("angle", 0.0)),
                   occluded=float(d.get("occluded", 0.0)), border=bool(d.get("border", False)))


@dataclass(frozen=True)
class SceneTruth:
    """What a scene video holds: per frame, the faces placed in it."""

    size: tuple[int, int]  # (width, height)
    fps: float
    seed: int
    background: str
    frames: tuple[tuple[SceneFace, ...], ...]
    source: str = ""  # which faces (e.g. "fer2013 private"), for the report
    video: str = ""  # the video file the truth belongs to, if any
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    def track_ids(self) -> list[int]:
        return sorted({f.id for faces in self.frames for f in faces})


# ---------------------------------------------------------------- truth files

MATCH_IOU = 0.3  # a detection overlapping a placed square this much is that face
INSIDE_FRACTION = 0.8  # or: this share of the detection's area lies inside the square ...
INSIDE_MIN_SIDE = 1.0 / 3.0  # ... and its side is at least this share of the square's


def match_placed_faces(squares_xyxy: np.ndarray, boxes_xyxy: np.ndarray, iou_threshold: float = MATCH_IOU
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of placed squares (n, 4) to detections (m, 4), both x1 y1 x2 y2.

    Pairs at IoU >= iou_threshold first (greedy, highest first), then detections lying inside a
    still unmatched square (see the module doc). Returns (square index (k,), detection index
    (k,), IoU (k,)).
    """
    squares = np.asarray(squares_xyxy, np.float64).reshape(-1, 4)
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    ti, di, ious = match_boxes(squares, boxes, iou_threshold)
    free_t = np.setdiff1d(np.arange(len(squares)), ti)
    free_d = np.setdiff1d(np.arange(len(boxes)), di)
    if not (len(free_t) and len(free_d)):
        return ti, di, ious
    sq, bx = squares[free_t][:, None, :], boxes[free_d][None, :, :]
    iw = np.clip(np.minimum(sq[..., 2], bx[..., 2]) - np.maximum(sq[..., 0], bx[..., 0]), 0, None)
    ih = np.clip(np.minimum(sq[..., 3], bx[..., 3]) - np.maximum(sq[..., 1], bx[..., 1]), 0, None)
    area = np.maximum((bx[..., 2] - bx[..., 0]) * (bx[..., 3] - bx[..., 1]), 1e-9)
    inside = iw * ih / area  # (t, d) share of each detection inside each square
    side_ratio = (np.maximum(bx[..., 2] - bx[..., 0], bx[..., 3] - bx[..., 1])
                  / np.maximum(sq[..., 2] - sq[..., 0], 1e-9))
    a, b = greedy_pairs(np.where(side_ratio >= INSIDE_MIN_SIDE, inside, 0.0), INSIDE_FRACTION)
    iou = iou_matrix(squares[free_t], boxes[free_d])[a, b]
    return np.concatenate([ti, free_t[a]]), np.concatenate([di, free_d[b]]), np.concatenate([ious, iou])


def truth_path(video_path: str | Path) -> Path:
    """`scene.mp4` -> `scene.truth.jsonl`."""
    p = Path(video_path)
    return p.with_name(p.stem + ".truth.jsonl")


def write_truth(path: str | Path, truth: SceneTruth) -> Path:
    path = Path(path)
    meta = {"size": list(truth.size), "fps": truth.fps, "seed": truth.seed,
            "background": truth.background, "n_frames": truth.n_frames, "source": truth.source,
            "video": truth.video, **truth.meta}
    with open(path, "w") as f:
        f.write(json.dumps({"meta": meta}) + "\n")
        for i, faces in enumerate(truth.frames):
            f.write(json.dumps({"frame": i, "faces": [x.to_json() for x in faces]}) + "\n")
    return path


def read_truth(path: str | Path) -> SceneTruth:
    """Read a truth file (or the truth beside a video path)."""
    path = Path(path)
    if not path.name.endswith(".truth.jsonl"):
        path = truth_path(path)
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if not lines or "meta" not in lines[0]:
        raise ValueError(f"{path}: not a scene truth file (first line must be {{\"meta\": ...}})")
    meta = dict(lines[0]["meta"])
    frames = [None] * len(lines[1:])
    for d in lines[1:]:
        frames[int(d["frame"])] = tuple(SceneFace.from_json(x) for x in d["faces"])
    known = ("size", "fps", "seed", "background", "n_frames", "source", "video")
    return SceneTruth(size=tuple(meta["size"]), fps=float(meta["fps"]), seed=int(meta["seed"]),
                      background=str(meta["background"]), frames=tuple(frames),
                      source=str(meta.get("source", "")), video=str(meta.get("video", "")),
                      meta={k: v for k, v in meta.items() if k not in known})


# ---------------------------------------------------------------- backgrounds

def make_background(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A (H, W, 3) uint8 BGR background of one of BACKGROUNDS."""
    w, h = size
    if kind == "gradient":
        c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
        ang = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xx * math.cos(ang) + yy * math.sin(ang))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    elif kind == "noise":
        # Low-frequency colour noise (a textured wall), plus fine grain.
        small = rng.uniform(30, 220, (max(h // 40, 2), max(w // 40, 2), 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0, 12, (h, w, 3)).astype(np.float32)
    elif kind == "shapes":
        img = np.empty((h, w, 3), np.float32)
        img[:] = rng.uniform(40, 200, 3)
        for _ in range(int(rng.integers(12, 30))):
            color = tuple(float(c) for c in rng.uniform(0, 255, 3))
            if rng.random() < 0.5:
                center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                axes = (int(rng.integers(10, w // 3)), int(rng.integers(10, h // 3)))
                cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
            else:
                p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.rectangle(img, p1, p2, color, -1)
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(rng.uniform(3, 9)))
    elif kind == "room":
        # A gray room: back wall, floor, a door, a window, a picture frame; soft light falloff.
        img = np.empty((h, w, 3), np.float32)
        wall = rng.uniform(110, 190)
        img[:] = wall
        horizon = int(h * rng.uniform(0.6, 0.75))
        img[horizon:] = wall * rng.uniform(0.45, 0.7)
        dx = int(rng.integers(0, max(w - w // 6, 1)))
        cv2.rectangle(img, (dx, int(h * 0.2)), (dx + w // 6, horizon), (wall * 0.6,) * 3, -1)
        wx = int(rng.integers(0, max(w - w // 4, 1)))
        cv2.rectangle(img, (wx, int(h * 0.1)), (wx + w // 4, int(h * 0.4)), (min(wall * 1.35, 250),) * 3, -1)
        cv2.rectangle(img, (wx, int(h * 0.1)), (wx + w // 4, int(h * 0.4)), (wall * 0.5,) * 3, 3)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        lx, ly = rng.uniform(0, w), rng.uniform(0, h * 0.3)
        falloff = 1.0 - 0.35 * np.hypot(xx - lx, yy - ly) / math.hypot(w, h)
        img *= falloff[..., None]
        img *= rng.uniform(0.9, 1.1, 3)[None, None, :]  # a slight colour cast
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=1.5)
    else:
        raise ValueError(f"unknown background {kind!r}; use one of {', '.join(BACKGROUNDS)}")
    return np.clip(img, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- pasting faces

def feather_mask(side: int, ramp_px: float) -> np.ndarray:
    """(side, side) float32 alpha: 1 inside, smoothstep down to 0 over the outer ramp_px pixels."""
    if ramp_px <= 0:
        return np.ones((side, side), np.float32)
    d = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32) + 0.5
    t = np.clip(d / max(ramp_px, 1.0), 0.0, 1.0)
    r = t * t * (3.0 - 2.0 * t)
    return np.outer(r, r).astype(np.float32)


def ring_px(side: int, feather: float) -> int:
    """Width of the fade-out ring outside a face square of this side."""
    return int(math.ceil(max(feather, 0.0) * side))


def upscale_face(face_gray: np.ndarray, side: int) -> np.ndarray:
    """(48, 48) uint8 gray -> (side, side) uint8 gray; cubic when enlarging, area when shrinking."""
    interp = cv2.INTER_CUBIC if side >= face_gray.shape[0] else cv2.INTER_AREA
    return cv2.resize(face_gray, (side, side), interpolation=interp)


def paste_face(image_bgr: np.ndarray, face_gray: np.ndarray, box: tuple[int, int, int, int],
               *, angle: float = 0.0, feather: float = DEFAULT_FEATHER) -> None:
    """Blend one upscaled face into image_bgr (in place) at the square `box`, rotated by `angle`.

    The square holds exactly the face; a ring of `feather` x side outside it fades the face's
    replicated edge into the background (clipped at the image border). Rotation turns the
    face and its alpha together about the square's centre.
    """
    x1, y1, x2, y2 = box
    side = x2 - x1
    ring = ring_px(side, feather)
    face = upscale_face(face_gray, side).astype(np.float32)
    n = side + 2 * ring
    if ring:
        canvas = cv2.copyMakeBorder(face, ring, ring, ring, ring, cv2.BORDER_REPLICATE)
        # Smear the replicated streaks in the ring only; the square keeps its pixels.
        smooth = cv2.GaussianBlur(canvas, (0, 0), sigmaX=max(ring / 3.0, 0.5))
        inside = np.zeros((n, n), bool)
        inside[ring:ring + side, ring:ring + side] = True
        canvas = np.where(inside, canvas, smooth)
        alpha = feather_mask(n, ring)
        alpha[inside] = 1.0
    else:
        canvas, alpha = face, np.ones((n, n), np.float32)
    if angle:
        m = cv2.getRotationMatrix2D(((n - 1) / 2.0, (n - 1) / 2.0), angle, 1.0)
        canvas = cv2.warpAffine(canvas, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(alpha, m, (n, n), flags=cv2.INTER_LINEAR, borderValue=0.0)
    # Clip the canvas (square + ring) to the image.
    h, w = image_bgr.shape[:2]
    cx1, cy1 = x1 - ring, y1 - ring
    ix1, iy1, ix2, iy2 = max(cx1, 0), max(cy1, 0), min(cx1 + n, w), min(cy1 + n, h)
    if ix2 <= ix1 or iy2 <= iy1:
        return
    canvas = canvas[iy1 - cy1:iy2 - cy1, ix1 - cx1:ix2 - cx1]
    alpha = alpha[iy1 - cy1:iy2 - cy1, ix1 - cx1:ix2 - cx1, None]
    roi = image_bgr[iy1:iy2, ix1:ix2].astype(np.float32)
    out = roi * (1.0 - alpha) + canvas[..., None] * alpha
    image_bgr[iy1:iy2, ix1:ix2] = np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _boxes_overlap(a, b, gap: int) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def _place_squares(rng: np.random.Generator, n: int, size: tuple[int, int], face_px: tuple[int, int],
                   pad: int, feather: float = 0.0) -> list[tuple[int, int, int]]:
    """n squares (x, y, side) that stay inside the frame with `pad` px of drift and never
    overlap, nor touch each other's fade-out rings (`feather`)."""
    w, h = size
    lo, hi = face_px
    hi = min(hi, w - 2 * pad - 2, h - 2 * pad - 2)
    lo = min(lo, hi)
    for _attempt in range(200):
        placed: list[tuple[int, int, int]] = []
        # Big faces first: they are the hard ones to fit.
        sides = sorted((int(rng.integers(lo, hi + 1)) for _ in range(n)), reverse=True)
        for side in sides:
            for _try in range(100):
                x = int(rng.integers(pad, w - pad - side + 1))
                y = int(rng.integers(pad, h - pad - side + 1))
                cand = (x, y, x + side, y + side)
                if all(not _boxes_overlap(cand, (px, py, px + ps, py + ps),
                                          2 * pad + 2 + ring_px(side, feather) + ring_px(ps, feather))
                       for px, py, ps in placed):
                    placed.append((x, y, side))
                    break
            else:
                break
        if len(placed) == n:
            return placed
        hi = max(lo, int(hi * 0.85))  # crowded: try smaller faces
    raise ValueError(f"cannot place {n} faces of {face_px} px in a {w}x{h} frame; use fewer or smaller faces")


@dataclass(frozen=True)
class FaceTrack:
    """One placed face of a video: its source crop, its square and how it drifts."""

    id: int
    src: int
    label: int
    x: int
    y: int
    side: int
    angle: float
    amp: tuple[float, float]  # drift amplitude in px (x, y)
    period: tuple[float, float]  # frames per drift cycle
    phase: tuple[float, float]

    def box_at(self, i: int) -> tuple[int, int, int, int]:
        dx = self.amp[0] * math.sin(2 * math.pi * i / self.period[0] + self.phase[0])
        dy = self.amp[1] * math.sin(2 * math.pi * i / self.period[1] + self.phase[1])
        x, y = int(round(self.x + dx)), int(round(self.y + dy))
        return (x, y, x + self.side, y + self.side)


def _make_tracks(rng: np.random.Generator, labels: np.ndarray, n_faces: int, size: tuple[int, int],
                 face_px: tuple[int, int], drift_px: float, angles: tuple[float, ...],
                 feather: float = DEFAULT_FEATHER) -> list[FaceTrack]:
    pad = int(math.ceil(drift_px))
    squares = _place_squares(rng, n_faces, size, face_px, pad, feather)
    srcs = rng.choice(len(labels), size=n_faces, replace=len(labels) < n_faces)
    tracks = []
    for k, ((x, y, side), src) in enumerate(zip(squares, srcs)):
        # A sinusoid of amplitude A and period P moves at most 2*pi*A/P px per frame.
        periods = tuple(float(v) for v in rng.uniform(40, 120, 2))
        amps = tuple(float(v) * drift_px for v in rng.uniform(0.4, 1.0, 2))
        tracks.append(FaceTrack(id=k, src=int(src), label=int(labels[src]), x=x, y=y, side=side,
                             angle=float(rng.choice(angles)) if angles else 0.0,
                             amp=amps, period=periods, phase=tuple(float(v) for v in rng.uniform(0, 2 * math.pi, 2))))
    return tracks


def _render(background: np.ndarray, faces: np.ndarray, tracks: list[FaceTrack], i: int, feather: float,
            rng: np.random.Generator | None, noise_sigma: float) -> tuple[np.ndarray, tuple[SceneFace, ...]]:
    img = background.copy()
    truth = []
    for t in tracks:
        box = t.box_at(i)
        paste_face(img, faces[t.src], box, angle=t.angle, feather=feather)
        truth.append(SceneFace(id=t.id, box=box, label=t.label, src=t.src, angle=t.angle))
    if rng is not None and noise_sigma > 0:
        # Sensor-like grain that changes every frame, so a still scene is not a still video.
        img = np.clip(img.astype(np.float32) + rng.normal(0, noise_sigma, img.shape), 0, 255).astype(np.uint8)
    return img, tuple(truth)


def _check_inputs(faces: np.ndarray, labels: np.ndarray, faces_per_frame) -> tuple[int, int]:
    if faces.ndim != 3 or faces.dtype != np.uint8 or len(faces) == 0:
        raise ValueError(f"faces must be (n, h, w) uint8 gray with n > 0, got {faces.shape} {faces.dtype}")
    if len(labels) != len(faces):
        raise ValueError(f"{len(faces)} faces but {len(labels)} labels")
    lo, hi = (faces_per_frame, faces_per_frame) if isinstance(faces_per_frame, int) else faces_per_frame
    if not 1 <= lo <= hi:
        raise ValueError(f"faces_per_frame must be >= 1, got {faces_per_frame}")
    return int(lo), int(hi)


# ---------------------------------------------------------------- stills and videos

def make_scene_image(faces: np.ndarray, labels: np.ndarray, *, size: tuple[int, int] = (640, 480),
                     faces_per_frame: int | tuple[int, int] = (1, 4), face_px: tuple[int, int] = (60, 300),
                     seed: int = 0, background: str = "mixed", feather: float = DEFAULT_FEATHER,
                     angles: tuple[float, ...] = ()) -> tuple[np.ndarray, tuple[SceneFace, ...]]:
    """One still: (H, W, 3) uint8 BGR image and the faces placed in it.

    faces: (n, 48, 48) uint8 gray; labels: (n,) ints. `angles`: rotations (degrees) to draw
    from per face; empty = upright. `background` is one of BACKGROUNDS or "mixed" (drawn from
    the seed).
    """
    lo, hi = _check_inputs(faces, labels, faces_per_frame)
    rng = np.random.default_rng(seed)
    kind = str(rng.choice(BACKGROUNDS)) if background == "mixed" else background
    bg = make_background(kind, size, rng)
    n = int(rng.integers(lo, hi + 1))
    tracks = _make_tracks(rng, np.asarray(labels), n, size, face_px, 0.0, tuple(angles), feather)
    return _render(bg, faces, tracks, 0, feather, None, 0.0)


def open_writer(path: str | Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, Path]:
    """A VideoWriter that really opened: mp4v for .mp4, else (or when that fails) MJPG .avi."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tries = [(path, "mp4v")] if path.suffix.lower() == ".mp4" else []
    tries.append((path.with_suffix(".avi"), "MJPG"))
    for p, fourcc in tries:
        writer = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*fourcc), float(fps), tuple(size))
        if writer.isOpened():
            return writer, p
        writer.release()
        log.warning("cannot write %s with %s, trying the next codec", p, fourcc)
    raise RuntimeError(f"OpenCV cannot write video {path} (tried {', '.join(f for _, f in tries)}); "
                       "check that opencv was built with a video backend (FFmpeg)")


def make_scene_video(path: str | Path, faces: np.ndarray, labels: np.ndarray, *, n_frames: int = 60,
                     size: tuple[int, int] = (640, 480), faces_per_frame: int | tuple[int, int] = (1, 4),
                     face_px: tuple[int, int] = (60, 300), fps: float = 15.0, seed: int = 0,
                     background: str = "mixed", feather: float = DEFAULT_FEATHER, drift_px: float = 12.0,
                     noise_sigma: float = 2.0, angles: tuple[float, ...] = (), source: str = "",
                     write_truth_file: bool = True) -> SceneTruth:
    """Write a synthetic scene video (and its truth file beside it); return the truth.

    faces: (n, 48, 48) uint8 gray source crops; labels: (n,) ints in edge.labels order. The
    number of faces (drawn from `faces_per_frame`) and their identities are fixed per video,
    so each face is one track; each drifts within +-`drift_px` (at most a few px per frame).
    If the .mp4 writer cannot open, the video is written as MJPG .avi; `truth.video` names
    the file actually written.
    """
    lo, hi = _check_inputs(faces, labels, faces_per_frame)
    rng = np.random.default_rng(seed)
    kind = str(rng.choice(BACKGROUNDS)) if background == "mixed" else background
    bg = make_background(kind, size, rng)
    n = int(rng.integers(lo, hi + 1))
    tracks = _make_tracks(rng, np.asarray(labels), n, size, face_px, drift_px, tuple(angles), feather)
    writer, written = open_writer(path, fps, size)
    frames = []
    try:
        for i in range(n_frames):
            img, truth = _render(bg, faces, tracks, i, feather, rng, noise_sigma)
            writer.write(img)
            frames.append(truth)
    finally:
        writer.release()
    truth = SceneTruth(size=tuple(size), fps=float(fps), seed=int(seed), background=kind,
                       frames=tuple(frames), source=source, video=written.name,
                       meta={"feather": feather, "drift_px": drift_px, "noise_sigma": noise_sigma})
    if write_truth_file:
        write_truth(truth_path(written), truth)
    return truth


def truth_frames(path: str | Path, truth: SceneTruth) -> Iterator[tuple[int, tuple[SceneFace, ...], np.ndarray]]:
    """(index, faces placed, (H, W, 3) uint8 BGR frame) for every frame of a scene video read
    back from `path`; RuntimeError when the file holds fewer frames than its truth."""
    with contextlib.closing(video_frames(path)) as frames:
        for i, placed in enumerate(truth.frames):
            image = next(frames, None)
            if image is None:
                raise RuntimeError(f"{path}: only {i} of {truth.n_frames} frames could be read back")
            yield i, placed, image
