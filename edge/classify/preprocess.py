"""The one face-crop -> model-input function, shared by training and the runtime.

Training feeds FER-2013's 48x48 gray crops through `to_model_input`; the runtime crops faces
from camera frames with `crop_face` and then calls the same `to_model_input`, so the two cannot
drift apart. Everything here is NumPy/OpenCV: `edge` must never import TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np


EQUALIZE_MODES = ("hist", "none")
FROM_FER_MODES = ("resize", "center_crop")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """What the classifier expects: a gray (height, width) crop, equalized, then `(p - mean) / std`.

    `equalize` is "hist" (`cv2.equalizeHist` on the input-sized crop) or "none". The FER-2013
    Training images as distributed here are already equalized while the test splits and camera
    crops are not; equalizing every input makes them alike, and equalizing twice changes little.
    `from_fer` says how a 48x48 FER-2013 image meets another input size: "resize"
    (`cv2.INTER_AREA`) or "center_crop".
    """

    height: int = 48
    width: int = 48
    channels: int = 1
    mean: float = 128.0
    std: float = 64.0
    equalize: str = "hist"
    from_fer: str = "resize"

    def __post_init__(self) -> None:
        if self.equalize not in EQUALIZE_MODES:
            raise ValueError(f"equalize must be one of {EQUALIZE_MODES}, got {self.equalize!r}")
        if self.from_fer not in FROM_FER_MODES:
            raise ValueError(f"from_fer must be one of {FROM_FER_MODES}, got {self.from_fer!r}")
        if not self.std > 0:
            raise ValueError(f"std must be > 0, got {self.std}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "InputSpec":
        keys = ("height", "width", "channels", "mean", "std", "equalize", "from_fer")
        return cls(**{k: d[k] for k in keys if k in d})


@dataclass(frozen=True, slots=True)
class CropPolicy:
    """How a detected face box becomes a crop that looks like FER-2013's framing.

    `margin` grows the square crop around the box centre by this fraction of the box side;
    `shift_y` moves the centre down by this fraction of the side (FER crops include the chin
    but little forehead); `align` rotates so that the eye line is horizontal.
    """

    margin: float = 0.0
    shift_y: float = 0.0
    align: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "CropPolicy":
        return cls(**{k: d[k] for k in ("margin", "shift_y", "align") if k in d})


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR or (H, W) gray -> (H, W) uint8 gray."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def fit_to_input(gray: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(n, h, w) uint8 crops of any size -> (n, spec.height, spec.width) uint8.

    Crops cut by `crop_face` already have the input size and pass through untouched. Others
    (FER-2013's 48x48 images) follow `spec.from_fer`: a centred crop when they are at least as
    large as the input, else an INTER_AREA resize.
    """
    h, w = gray.shape[1:3]
    if (h, w) == (spec.height, spec.width):
        return gray
    if spec.from_fer == "center_crop" and h >= spec.height and w >= spec.width:
        top, left = (h - spec.height) // 2, (w - spec.width) // 2
        return gray[:, top:top + spec.height, left:left + spec.width]
    return np.stack([cv2.resize(g, (spec.width, spec.height), interpolation=cv2.INTER_AREA) for g in gray])


def to_model_input(gray: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Gray crops -> normalised float model input: fit to size, equalize, `(pixel - mean) / std`.

    gray: (n, h, w) or (h, w) uint8. Returns (n, spec.height, spec.width, 1) float32.
    Training, evaluation, int8 calibration and the runtime all call this one function.
    """
    batch = fit_to_input(gray[None] if gray.ndim == 2 else gray, spec)
    if spec.equalize == "hist":
        batch = np.stack([cv2.equalizeHist(np.ascontiguousarray(g)) for g in batch])
    out = batch.astype(np.float32)
    out -= np.float32(spec.mean)
    out *= np.float32(1.0 / spec.std)
    return out[..., None]


def crop_window(box_xyxy: np.ndarray, policy: CropPolicy, height: int, width: int) -> tuple[int, int, int, int]:
    """The frame rectangle (x0, y0, x1, y1), clipped to a height x width frame, that holds every
    pixel `crop_face` samples for this box: a square of side max(w, h) * (1 + margin) around the
    box centre moved down by shift_y * side; turned to level the eyes it needs at most sqrt(2) / 2
    of the side each way, and bilinear sampling one pixel more."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    side = max(x2 - x1, y2 - y1) * (1.0 + policy.margin)
    cx = (x1 + x2) / 2.0
    cy = (y1 + y2) / 2.0 + policy.shift_y * side
    half = side * (0.7072 if policy.align else 0.5) + 2.0
    # Never empty: a box wholly outside the frame keeps the nearest row or column to replicate.
    x0 = min(max(math.floor(cx - half), 0), width - 1)
    y0 = min(max(math.floor(cy - half), 0), height - 1)
    return x0, y0, min(max(math.ceil(cx + half) + 1, x0 + 1), width), min(max(math.ceil(cy + half) + 1, y0 + 1), height)


def crop_face(
    image_bgr: np.ndarray,
    box_xyxy: np.ndarray,
    spec: InputSpec,
    policy: CropPolicy,
    keypoints: np.ndarray | None = None,
) -> np.ndarray:
    """Cut one face out of a frame as a (spec.height, spec.width) uint8 gray crop.

    image_bgr: (H, W, 3) uint8 BGR or (H, W) gray; box_xyxy: (4,) frame pixels; keypoints: (6, 2)
    frame pixels (right eye, left eye, ...), used only when `policy.align`. Pixels outside the
    frame are filled by edge replication, as a real face continues past the border more than
    black does.
    """
    # The warp runs on the crop's own window (crop_window), in that window's coordinates, so
    # that a caller that converted only that window of the frame to gray, and passes the box
    # shifted by its integer origin, gets the same pixels bit for bit.
    x0, y0, x1, y1 = crop_window(box_xyxy, policy, image_bgr.shape[0], image_bgr.shape[1])
    bx1, by1, bx2, by2 = (float(v) for v in box_xyxy)
    bx1, bx2, by1, by2 = bx1 - x0, bx2 - x0, by1 - y0, by2 - y0
    side = max(bx2 - bx1, by2 - by1) * (1.0 + policy.margin)
    cx = (bx1 + bx2) / 2.0
    cy = (by1 + by2) / 2.0 + policy.shift_y * side
    angle_deg = 0.0
    if policy.align and keypoints is not None:
        (rx, ry), (lx, ly) = keypoints[0], keypoints[1]
        # Right eye is on the image's left; the angle that levels the eye line.
        angle_deg = math.degrees(math.atan2(float(ly) - float(ry), float(lx) - float(rx)))
    # Warp straight to the output when upscaling; when shrinking a big face, warp to an
    # integer multiple of the output first and area-average down, which avoids the aliasing
    # that a bilinear warp alone gives (warpAffine has no INTER_AREA).
    k = int(min(4, max(1, side // spec.width)))
    out_w, out_h = spec.width * k, spec.height * k
    scale = out_w / max(side, 1.0)
    m = cv2.getRotationMatrix2D((cx, cy), angle_deg, scale)
    m[0, 2] += out_w / 2.0 - cx
    m[1, 2] += out_h / 2.0 - cy
    crop = cv2.warpAffine(
        to_gray(image_bgr[y0:y1, x0:x1]), m, (out_w, out_h), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if k > 1:
        crop = cv2.resize(crop, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    return crop
