"""Synthetic scenes with known faces: the ground truth for end-to-end accuracy.

FER-2013 crops (48x48 gray) are upscaled to several sizes and pasted, 1-4 at a time, at known
non-overlapping places on varied backgrounds; each face then drifts smoothly by a few pixels
per frame. The result is a video (or a still) plus its truth: per frame, per face, the
placed square in frame pixels, the label and the index of the source crop. Everything is
deterministic given the seed.

The placed square IS the FER-2013 framing: a crop of the frame at `box` resized to 48x48
gives back the source crop (up to interpolation and codec loss). A detector box is usually
smaller than that square (FER crops are tight, with some margin around the face), which is
what `benchmarks.calibrate` measures.

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

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.boxes import match_boxes
from edge.labels import LABELS
from train.data import default_data_path

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
class _Track:
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
                 feather: float = DEFAULT_FEATHER) -> list[_Track]:
    pad = int(math.ceil(drift_px))
    squares = _place_squares(rng, n_faces, size, face_px, pad, feather)
    srcs = rng.choice(len(labels), size=n_faces, replace=len(labels) < n_faces)
    tracks = []
    for k, ((x, y, side), src) in enumerate(zip(squares, srcs)):
        # A sinusoid of amplitude A and period P moves at most 2*pi*A/P px per frame.
        periods = tuple(float(v) for v in rng.uniform(40, 120, 2))
        amps = tuple(float(v) * drift_px for v in rng.uniform(0.4, 1.0, 2))
        tracks.append(_Track(id=k, src=int(src), label=int(labels[src]), x=x, y=y, side=side,
                             angle=float(rng.choice(angles)) if angles else 0.0,
                             amp=amps, period=periods, phase=tuple(float(v) for v in rng.uniform(0, 2 * math.pi, 2))))
    return tracks


def _render(background: np.ndarray, faces: np.ndarray, tracks: list[_Track], i: int, feather: float,
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


def read_video_frames(path: str | Path) -> list[np.ndarray]:
    """All frames of a video as (H, W, 3) uint8 BGR (for tests and small checks)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot open {path}")
    frames = []
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
    finally:
        cap.release()
    return frames


# ================================================================ the scene benchmark
#
# Synthetic videos go through the real Pipeline (detector, shared crop, int8 classifier,
# tracker), twice: smoothing on and off. Every placed face is matched to a detection by IoU;
# the report separates what each stage costs:
#   crop accuracy     the classifier on the original 48x48 crops of the matched faces;
#   oracle accuracy   the classifier on the true square cut from the decoded frame (codec,
#                     up- and down-scaling; no detector);
#   accuracy          the pipeline's label on matched faces (detector box + crop policy);
#   agreement         the pipeline's label vs the classifier's on the original crop.
# Flips count label changes between consecutive frames in which a placed face was found;
# each placed face has one constant label, so every flip is flicker.

DEFAULT_DATA = default_data_path()  # $FER_EDGE_DATA, else ../shared/data/fer2013
DEFAULT_OUT = "reports/scenes"
# The placed square holds the whole FER crop, face plus margin, so a detector box (the face
# only) inside it has IoU ~ (box/square)^2: 0.45-0.8 for well-found faces. 0.3 accepts a box
# a bit more than half the square's side that sits inside it, and rejects boxes on a neighbour
# or on background (faces never overlap, so a box cannot straddle two faces).
MATCH_IOU = 0.3
SIZE_BUCKETS = (0, 100, 150, 200, 10_000)  # placed square side, px


def _dataset_index(names) -> np.ndarray:
    index = {name: i for i, name in enumerate(LABELS)}
    try:
        return np.array([index[n] for n in names], np.int64)
    except KeyError as exc:
        raise ValueError(f"model label {exc.args[0]!r} is not a FER-2013 label ({', '.join(LABELS)})") from None


def _rate(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def run_scene_benchmark(*, out: str | Path | None = DEFAULT_OUT, n_videos: int = 40, n_frames: int = 45,
                        seed: int = 0, model: str | None = None, detector: str = "blazeface", detector_range: str = "short",
                        data: str = DEFAULT_DATA, split: str = "private", size: tuple[int, int] = (640, 480),
                        faces_per_frame: tuple[int, int] = (1, 4), face_px: tuple[int, int] = (60, 300),
                        fps: float = 15.0, iou_threshold: float = MATCH_IOU, keep_videos: bool = True,
                        faces=None, crop=None, detector_model: str | None = None, progress: bool = False) -> dict:
    """Make synthetic videos, run the real Pipeline on them (smoothing on and off), report accuracy.

    faces: optional (images (n,48,48) uint8, labels (n,)) instead of loading `split` from `data`.
    crop: an edge.preprocess.CropPolicy to use instead of the model sidecar's (to measure a
    calibration before it is written into a sidecar).
    Each video keeps its 1-4 faces throughout (one track each), so the number of distinct faces
    is what bounds the accuracy figures: many short videos beat a few long ones.
    Videos go to out/videos (deleted afterwards unless keep_videos; a temp folder when out is
    None). Returns the report dict (see `scene_markdown` for what the fields mean).
    """
    import shutil
    import tempfile
    import time

    from edge.pipeline import Pipeline
    from edge.preprocess import CropPolicy, crop_face, to_gray

    t_start = time.perf_counter()
    if faces is None:
        from train.data import load_fer2013

        s = load_fer2013(data).split(split)
        images, labels = s.images, s.labels
        source = f"FER-2013 {split} ({data})"
    else:
        images, labels = faces
        source = "given faces"
    labels = np.asarray(labels, np.int64)
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="fer-edge-scenes-")
        video_dir = Path(tmp)
    else:
        video_dir = Path(out) / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)

    modes = {"smooth_off": False, "smooth_on": True}
    common = dict(detector=detector, range=detector_range, emotion_model=model, detector_model=detector_model)
    pipes = {m: Pipeline.from_defaults(smooth=on, **common) for m, on in modes.items()}
    if crop is not None:
        import dataclasses

        for pipe in pipes.values():
            # The pipeline crops with its card's policy; a replaced card changes only that.
            pipe.card = dataclasses.replace(pipe.card, crop=crop)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_videos * n_frames, unit="frame", desc="scenes")
    try:
        classifier = pipes["smooth_off"].classifier
        spec = classifier.spec
        to_ds = _dataset_index(classifier.labels)  # model column -> FER-2013 label index
        orig_pred = {}  # src -> the classifier's label on the original crop (dataset index)

        def original(src: int) -> int:
            if src not in orig_pred:
                orig_pred[src] = int(to_ds[np.argmax(classifier.classify(images[src:src + 1])[0])])
            return orig_pred[src]

        # Per mode, per matched face instance, in columns.
        rows = {m: {k: [] for k in ("video", "frame", "face", "src", "label", "pred", "iou", "track")} for m in modes}
        det = {"tp": 0, "fp": 0, "fn": 0}
        placed_sides, found_flags = [], []
        oracle_pred, oracle_label, oracle_src = [], [], []
        oracle_at: dict[tuple[int, int, int], int] = {}  # (video, frame, face id) -> oracle label
        per_video = []
        for v in range(n_videos):
            truth = make_scene_video(video_dir / f"scene_{v:02d}.mp4", images, labels, n_frames=n_frames, size=size,
                                     faces_per_frame=faces_per_frame, face_px=face_px, fps=fps,
                                     seed=seed * 10_000 + v, source=source)
            path = video_dir / truth.video
            per_video.append({"video": str(path), "background": truth.background, "faces": len(truth.frames[0]),
                              "sides": [f.box[2] - f.box[0] for f in truth.frames[0]]})
            for pipe in pipes.values():
                pipe.reset()
            cap = cv2.VideoCapture(str(path))
            if not cap.isOpened():
                raise RuntimeError(f"OpenCV cannot read back {path}")
            try:
                for i, placed in enumerate(truth.frames):
                    ok, image = cap.read()
                    if not ok:
                        raise RuntimeError(f"{path}: only {i} of {truth.n_frames} frames could be read back")
                    tboxes = np.array([f.box for f in placed])
                    gray = to_gray(image)
                    oracle = np.stack([crop_face(gray, b, spec, CropPolicy()) for b in tboxes])
                    o_pred = to_ds[np.argmax(classifier.classify(oracle), axis=1)].tolist()
                    oracle_pred += o_pred
                    oracle_at.update({(v, i, f.id): p for f, p in zip(placed, o_pred)})
                    oracle_label += [f.label for f in placed]
                    oracle_src += [f.src for f in placed]
                    for m, pipe in pipes.items():
                        result = pipe.process(image, index=i, t=i / fps)
                        ti, di, ious = match_boxes(tboxes, result.faces.xyxy, iou_threshold)
                        preds = to_ds[result.label_index]
                        r = rows[m]
                        for t, d, u in zip(ti, di, ious):
                            f = placed[t]
                            r["video"].append(v)
                            r["frame"].append(i)
                            r["face"].append(f.id)
                            r["src"].append(f.src)
                            r["label"].append(f.label)
                            r["pred"].append(int(preds[d]))
                            r["iou"].append(float(u))
                            r["track"].append(int(result.track_ids[d]))
                        if m == "smooth_off":  # detection is the same in both runs
                            det["tp"] += len(ti)
                            det["fp"] += len(result.faces) - len(ti)
                            det["fn"] += len(placed) - len(ti)
                            hit = set(ti.tolist())
                            placed_sides += [f.box[2] - f.box[0] for f in placed]
                            found_flags += [k in hit for k in range(len(placed))]
                    if bar is not None:
                        bar.update(1)
            finally:
                cap.release()
            if not keep_videos:
                path.unlink(missing_ok=True)
                truth_path(path).unlink(missing_ok=True)
    finally:
        if bar is not None:
            bar.close()
        for pipe in pipes.values():
            pipe.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    sides = np.array(placed_sides)
    found = np.array(found_flags, bool)
    by_size = []
    for lo, hi in zip(SIZE_BUCKETS[:-1], SIZE_BUCKETS[1:]):
        sel = (sides >= lo) & (sides < hi)
        by_size.append({"side_px": [lo, hi], "placed": int(sel.sum()), "recall": _rate(found[sel].sum(), sel.sum())})
    oracle_pred, oracle_label = np.array(oracle_pred), np.array(oracle_label)
    oracle_orig = np.array([original(int(s)) for s in oracle_src])
    report = {
        "detection": {"iou_threshold": iou_threshold, "placed": int(len(found)), "tp": det["tp"], "fp": det["fp"],
                      "fn": det["fn"], "recall": _rate(det["tp"], det["tp"] + det["fn"]),
                      "precision": _rate(det["tp"], det["tp"] + det["fp"]),
                      "mean_iou": float(np.mean(rows["smooth_off"]["iou"])) if rows["smooth_off"]["iou"] else None,
                      "iou_p5_p50_p95": ([float(v) for v in np.percentile(rows["smooth_off"]["iou"], [5, 50, 95])]
                                         if rows["smooth_off"]["iou"] else None),
                      "recall_by_size": by_size},
        "all_placed": {"n": int(len(oracle_label)), "distinct_faces": int(sum(v["faces"] for v in per_video)),
                       "crop_accuracy": _rate((oracle_orig == oracle_label).sum(), len(oracle_label)),
                       "oracle_accuracy": _rate((oracle_pred == oracle_label).sum(), len(oracle_label)),
                       "oracle_agreement": _rate((oracle_pred == oracle_orig).sum(), len(oracle_label))},
    }
    for m in modes:
        r = {k: np.array(v) for k, v in rows[m].items()}
        n = len(r["src"])
        orig = np.array([original(int(s)) for s in r["src"]], np.int64)
        flips, seconds, switches, tracks = 0, 0.0, 0, 0
        for key in sorted(set(zip(r["video"].tolist(), r["face"].tolist()))):
            sel = (r["video"] == key[0]) & (r["face"] == key[1])
            seq = r["pred"][sel][np.argsort(r["frame"][sel])]
            flips += int((seq[1:] != seq[:-1]).sum())
            seconds += len(seq) / fps
            switches += len(set(r["track"][sel].tolist())) - 1
            tracks += 1
        oracle_m = np.array([oracle_at[(int(a), int(b), int(c))] for a, b, c in zip(r["video"], r["frame"], r["face"])])
        report[m] = {"matched": n, "distinct_faces": tracks,
                     "accuracy": _rate((r["pred"] == r["label"]).sum(), n),
                     "oracle_accuracy": _rate((oracle_m == r["label"]).sum(), n),
                     "agreement": _rate((r["pred"] == orig).sum(), n),
                     "crop_accuracy": _rate((orig == r["label"]).sum(), n),
                     "flips": flips, "track_seconds": seconds, "tracks": tracks,
                     "flips_per_track_s": _rate(flips, seconds), "track_id_switches": switches}
    off, on = report["smooth_off"], report["smooth_on"]
    # Positive: the pipeline beats the original crops; the target is "no more than 2 points worse".
    gap = None if off["accuracy"] is None else off["accuracy"] - off["crop_accuracy"]
    ratio = None
    if off["flips_per_track_s"] is not None and on["flips_per_track_s"]:
        ratio = off["flips_per_track_s"] / on["flips_per_track_s"]
    elif off["flips_per_track_s"]:
        ratio = float("inf")
    report["targets"] = {"accuracy_gap_points": None if gap is None else 100 * gap,
                         "accuracy_within_2_points": None if gap is None else bool(gap >= -0.02),
                         "flip_reduction": ratio, "flips_reduced_3x": None if ratio is None else bool(ratio >= 3)}
    card = pipes["smooth_off"].card
    report["settings"] = {"videos": n_videos, "frames": n_frames, "fps": fps, "seed": seed, "size": list(size),
                          "faces_per_frame": list(faces_per_frame), "face_px": list(face_px), "source": source,
                          "detector": detector, "range": detector_range, "model": str(classifier.model_path),
                          "model_metrics": card.metrics, "crop": card.crop.to_json(),
                          "crop_from": "sidecar" if crop is None else "override",
                          "feather": DEFAULT_FEATHER, "iou_threshold": iou_threshold}
    report["videos"] = per_video
    report["elapsed_s"] = time.perf_counter() - t_start
    return report


def _p(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def scene_markdown(report: dict, command: str = "") -> str:
    """The report as a markdown section (the table the README quotes)."""
    d, a, s = report["detection"], report["all_placed"], report["settings"]
    off, on, tg = report["smooth_off"], report["smooth_on"], report["targets"]
    lines = ["# Scene benchmark (synthetic videos, real pipeline)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"{s['videos']} videos x {s['frames']} frames at {s['fps']:g} fps, {s['size'][0]}x{s['size'][1]}, "
              f"{s['faces_per_frame'][0]}-{s['faces_per_frame'][1]} faces per video, placed squares "
              f"{s['face_px'][0]}-{s['face_px'][1]} px; faces from {s['source']}. Detector {s['detector']} "
              f"({s['range']} range); model {s['model']} ({json.dumps(s['model_metrics'])}); crop policy "
              f"{json.dumps(s['crop'])}.", "",
              "| metric | value |", "|---|---|",
              f"| detection recall (IoU >= {d['iou_threshold']}) | {_p(d['recall'])} ({d['tp']}/{d['tp'] + d['fn']}) |",
              f"| detection precision | {_p(d['precision'])} ({d['fp']} false positives) |",
              f"| mean IoU of matched boxes vs placed square | {d['mean_iou']:.3f} |" if d["mean_iou"] is not None
              else "| mean IoU | - |",
              f"| IoU of matched boxes, p5 / p50 / p95 | {' / '.join(f'{v:.2f}' for v in d['iou_p5_p50_p95'])} |"
              if d.get("iou_p5_p50_p95") else "| IoU percentiles | - |",
              f"| distinct faces placed / detected at least once | {a['distinct_faces']} / {off['distinct_faces']} |",
              f"| accuracy on detected faces, smoothing off | {_p(off['accuracy'])} |",
              f"| accuracy on detected faces, smoothing on | {_p(on['accuracy'])} |",
              f"| crop accuracy (classifier on the original 48x48 crops of the detected faces) | {_p(off['crop_accuracy'])} |",
              f"| agreement with the classifier on the original crop, smoothing off / on | {_p(off['agreement'])} / {_p(on['agreement'])} |",
              f"| oracle accuracy on the detected faces (true square cut from the decoded frame) | {_p(off['oracle_accuracy'])} |",
              f"| oracle accuracy, all placed faces | {_p(a['oracle_accuracy'])} |",
              f"| crop accuracy, all placed faces | {_p(a['crop_accuracy'])} |",
              f"| label flips per track per second, smoothing off | {off['flips_per_track_s']:.3f} |"
              if off["flips_per_track_s"] is not None else "| flips off | - |",
              f"| label flips per track per second, smoothing on | {on['flips_per_track_s']:.3f} |"
              if on["flips_per_track_s"] is not None else "| flips on | - |",
              f"| track id switches (off / on) | {off['track_id_switches']} / {on['track_id_switches']} |",
              "", "Recall by placed square side:", "", "| side px | placed | recall |", "|---|---|---|"]
    for b in d["recall_by_size"]:
        hi = "+" if b["side_px"][1] >= 10_000 else f"-{b['side_px'][1] - 1}"
        lines.append(f"| {b['side_px'][0]}{hi} | {b['placed']} | {_p(b['recall'])} |")
    gap = tg["accuracy_gap_points"]
    ratio = tg["flip_reduction"]
    lines += ["", "Targets: accuracy on detected faces (smoothing off) no more than 2 points below the crop "
              "accuracy: " + ("-" if gap is None else f"{gap:+.1f} points ({'met' if tg['accuracy_within_2_points'] else 'NOT met'})")
              + "; flips reduced >= 3x by smoothing: "
              + ("-" if ratio is None else f"{ratio:.1f}x ({'met' if tg['flips_reduced_3x'] else 'NOT met'})") + ".", ""]
    return "\n".join(lines)


def scene_plot(report: dict, path: str | Path) -> Path | None:
    """Recall by face size and the accuracy chain as a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    d = report["detection"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [f"{b['side_px'][0]}+" if b["side_px"][1] >= 10_000 else f"{b['side_px'][0]}-{b['side_px'][1] - 1}"
             for b in d["recall_by_size"]]
    ax1.bar(names, [100 * (b["recall"] or 0) for b in d["recall_by_size"]], color="tab:blue")
    ax1.set_ylim(0, 100)
    ax1.set_xlabel("placed face square, px")
    ax1.set_ylabel("detection recall, %")
    off, on, a = report["smooth_off"], report["smooth_on"], report["all_placed"]
    bars = {"crop acc\n(original)": off["crop_accuracy"], "oracle acc\n(true square)": off["oracle_accuracy"],
            "pipeline acc\nsmooth off": off["accuracy"], "pipeline acc\nsmooth on": on["accuracy"]}
    ax2.bar(list(bars), [100 * (v or 0) for v in bars.values()], color=["gray", "tab:green", "tab:orange", "tab:red"])
    ax2.set_ylim(0, 100)
    ax2.set_ylabel("accuracy on detected faces, %")
    ax2.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_scene_report(report: dict, out_dir: str | Path, command: str = "") -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "scenes.json", "md": out / "scenes.md"}
    paths["json"].write_text(json.dumps({**report, "command": command}, indent=2) + "\n")
    paths["md"].write_text(scene_markdown(report, command))
    png = scene_plot(report, out / "scenes.png")
    if png is not None:
        paths["png"] = png
    return paths


def summary_rows(report: dict) -> list[str]:
    """Rows for a 4-column results table (| what | fer-edge | peer | ratio |)."""
    d, off, on = report["detection"], report["smooth_off"], report["smooth_on"]
    n = d["placed"]
    fo, fn = off["flips_per_track_s"], on["flips_per_track_s"]
    return [
        f"| synthetic scenes ({n} placed faces): detection recall / precision | {_p(d['recall'])} / "
        f"{_p(d['precision'])} | | |",
        f"| synthetic scenes: accuracy on detected faces vs the classifier on their original crops | "
        f"{_p(off['accuracy'])} vs {_p(off['crop_accuracy'])} | | |",
        f"| synthetic scenes: label flips per track per second, smoothing on / off | "
        + ("-" if fn is None else f"{fn:.3f}") + " / " + ("-" if fo is None else f"{fo:.3f}") + " | | |",
    ]


def run_scenes_bench(out_dir: str | Path = DEFAULT_OUT, data: str = DEFAULT_DATA, model: str | None = None,
                     progress: bool = False, **kwargs) -> dict:
    """The default scene benchmark for `fer-edge bench all`: runs, writes out_dir/scenes.*, and returns
    the report with "markdown" (its section) and "summary_rows" (results-table rows) added."""
    report = run_scene_benchmark(out=out_dir, data=data, model=model, progress=progress, **kwargs)
    command = f"fer-edge bench scenes --out {out_dir}" + (f" --model {model}" if model else "")
    write_scene_report(report, out_dir, command)
    return {**report, "markdown": scene_markdown(report, command), "summary_rows": summary_rows(report)}


# ---------------------------------------------------------------- CLI

def _int_pair(text: str) -> tuple[int, int]:
    import argparse

    try:
        vals = [int(v) for v in text.lower().replace("x", ",").split(",")]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"expected N or A,B (or WxH), got {text!r}")
    return vals[0], vals[1]


def register(sub) -> None:
    """Add `scenes` to the `fer-edge bench` subparsers."""
    from edge.cli import HelpFormatter

    p = sub.add_parser("scenes", help="end-to-end accuracy on synthetic videos with known faces",
                       description="Paste FER-2013 faces (PrivateTest by default) into synthetic videos at known "
                       "places, run the real pipeline on them with smoothing on and off, and report detection "
                       "recall/precision, accuracy on detected faces against the labels and against the classifier "
                       "on the original crops, and label flips per track per second.",
                       formatter_class=HelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for scenes.json/.md/.png and videos/")
    p.add_argument("--videos", type=int, default=40, help="number of synthetic videos (each with 1-4 new faces)")
    p.add_argument("--frames", type=int, default=45, help="frames per video")
    p.add_argument("--fps", type=float, default=15.0, help="frame rate of the videos")
    p.add_argument("--seed", type=int, default=0, help="seed of the scenes (faces, places, backgrounds)")
    p.add_argument("--model", default=None, help="emotion .tflite with its .json sidecar (default: the shipped one)")
    p.add_argument("--detector", choices=("blazeface", "mediapipe"), default="blazeface", help="face detector backend")
    p.add_argument("--range", choices=("short", "full"), default="short", help="detector range model")
    p.add_argument("--detector-model", default=None,
                   help="detector .tflite (default: $FER_EDGE_MODEL_DIR, then the user cache)")
    p.add_argument("--data", default=DEFAULT_DATA, help="fer2013.csv or a folder with train/ and test/")
    p.add_argument("--split", choices=("public", "private"), default="private", help="which test faces to place")
    p.add_argument("--size", type=_int_pair, default=(640, 480), help="frame size WxH (default: 640x480)")
    p.add_argument("--faces-per-frame", type=_int_pair, default=(1, 4), help="faces per video: N or MIN,MAX (default: 1,4)")
    p.add_argument("--face-px", type=_int_pair, default=(60, 300), help="placed square side range MIN,MAX px (default: 60,300)")
    p.add_argument("--iou", type=float, default=MATCH_IOU, help="IoU to count a detection as a placed face")
    p.add_argument("--crop-margin", type=float, default=None, help="crop margin (default: the sidecar's)")
    p.add_argument("--crop-shift-y", type=float, default=None, help="crop shift_y (default: the sidecar's)")
    p.add_argument("--crop-align", choices=("on", "off"), default=None, help="eye alignment (default: the sidecar's)")
    p.add_argument("--no-keep-videos", action="store_true", help="delete the videos after the run")
    p.set_defaults(func=_cmd_scenes)


def _cmd_scenes(args) -> int:
    import shlex
    import sys

    from edge.cli import CliError
    from train.data import DataError

    if args.videos < 1 or args.frames < 1:
        raise CliError("--videos and --frames must be >= 1")
    crop = None
    if args.crop_margin is not None or args.crop_shift_y is not None or args.crop_align is not None:
        from edge.preprocess import CropPolicy
        from edge.sidecar import load_sidecar
        from edge.models import default_emotion_model

        base = load_sidecar(args.model or default_emotion_model()).crop
        crop = CropPolicy(margin=base.margin if args.crop_margin is None else args.crop_margin,
                          shift_y=base.shift_y if args.crop_shift_y is None else args.crop_shift_y,
                          align=base.align if args.crop_align is None else args.crop_align == "on")
    try:
        report = run_scene_benchmark(out=args.out, n_videos=args.videos, n_frames=args.frames, seed=args.seed,
                                     model=args.model, detector=args.detector, detector_range=args.range, data=args.data,
                                     split=args.split, size=args.size, faces_per_frame=args.faces_per_frame,
                                     face_px=args.face_px, fps=args.fps, iou_threshold=args.iou,
                                     keep_videos=not args.no_keep_videos, crop=crop,
                                     detector_model=args.detector_model, progress=True)
    except (FileNotFoundError, ValueError, DataError) as exc:
        raise CliError(str(exc)) from None
    command = "fer-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write_scene_report(report, args.out, command)
    print(scene_markdown(report, command))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
