"""`annotated = draw(image_bgr, result)`: boxes, track ids, labels, probability bars and a HUD.

On the hot path, so only OpenCV primitives on the frame (no alpha blending of the whole image).
Shared by the run window, `--save-video`, the web UI and the benchmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.types import FrameResult

FONT = cv2.FONT_HERSHEY_SIMPLEX

# BGR, saturated so that they stand out on camera images; FER-2013 labels by name, anything
# else cycles through the same colours.
PALETTE: dict[str, tuple[int, int, int]] = {
    "angry": (0, 0, 255),
    "disgust": (0, 160, 0),
    "fear": (200, 0, 200),
    "happy": (0, 220, 255),
    "sad": (255, 80, 0),
    "surprise": (0, 140, 255),
    "neutral": (255, 255, 0),
}
_CYCLE = tuple(PALETTE.values())
HUD_BG = (0, 0, 0)
HUD_FG = (255, 255, 255)


def label_color(label: str, index: int = 0) -> tuple[int, int, int]:
    """The BGR colour used for a label's boxes and bars."""
    return PALETTE.get(label, _CYCLE[index % len(_CYCLE)])


def draw(image_bgr: np.ndarray, result: FrameResult, fps: float | None = None, *, bars: bool = True,
         hud: bool = True, copy: bool = True) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> annotated (H, W, 3) uint8 BGR (a copy unless copy=False).

    Boxes are in the colour of the face's label, with "#id label 87%" above and one bar per
    class beside it; the HUD (top left) shows the frames/s when given and the stage latencies.
    """
    out = image_bgr.copy() if copy else image_bgr
    h, w = out.shape[:2]
    scale = max(0.35, min(1.0, w / 1280.0))  # text size follows the frame size
    thick = 1 if w < 900 else 2
    label_idx = result.label_indices
    for i in range(len(result.faces)):
        x1, y1, x2, y2 = (int(v) for v in result.faces.xyxy[i])
        li = int(label_idx[i])
        label = result.labels[li]
        color = label_color(label, li)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        tid = int(result.track_ids[i]) if len(result.track_ids) > i else -1
        caption = f"{'#%d ' % tid if tid >= 0 else ''}{label} {result.probs[i, li] * 100:.0f}%"
        (tw, th), base = cv2.getTextSize(caption, FONT, 0.5 * scale + 0.1, thick)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(h - 1, y2 + th + 4)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + base // 2), color, -1)
        cv2.putText(out, caption, (x1 + 2, ty - base // 2), FONT, 0.5 * scale + 0.1, (0, 0, 0), thick, cv2.LINE_AA)
        if bars:
            _bars(out, result, i, (x1, y1, x2, y2), scale)
    if hud:
        _hud(out, result, fps, scale, thick)
    return out


def _bars(out: np.ndarray, result: FrameResult, i: int, box: tuple[int, int, int, int], scale: float) -> None:
    h, w = out.shape[:2]
    x1, y1, x2, _ = box
    n = len(result.labels)
    row = max(9, int(16 * scale))
    bar_w = max(40, int(90 * scale))
    text_w = int(34 * scale) + 8
    panel_w = text_w + bar_w
    # Right of the box when it fits, else left of it, else inside the frame's edge.
    px = x2 + 6 if x2 + 6 + panel_w <= w else max(0, x1 - 6 - panel_w)
    py = max(0, min(y1, h - row * n))
    font_scale = 0.32 * scale + 0.08
    for k in range(n):
        y = py + k * row
        if y + row > h:
            break
        p = float(result.probs[i, k])
        color = label_color(result.labels[k], k)
        cv2.putText(out, result.labels[k][:3], (px, y + row - 3), FONT, font_scale, HUD_FG, 1, cv2.LINE_AA)
        bx = px + text_w
        cv2.rectangle(out, (bx, y + 2), (bx + bar_w, y + row - 2), (60, 60, 60), 1)
        fill = int(round(p * bar_w))
        if fill > 0:
            cv2.rectangle(out, (bx, y + 2), (bx + fill, y + row - 2), color, -1)


def _hud(out: np.ndarray, result: FrameResult, fps: float | None, scale: float, thick: int) -> None:
    t = result.timings
    parts = []
    if fps is not None:
        parts.append(f"{fps:.1f} fps")
    parts.append(f"det {t.detect_ms:.1f} ms  cls {t.preprocess_ms + t.classify_ms:.1f} ms  "
                 f"total {t.total_ms:.1f} ms  faces {len(result.faces)}")
    text = "  |  ".join(parts)
    fs = 0.45 * scale + 0.1
    (tw, th), base = cv2.getTextSize(text, FONT, fs, thick)
    cv2.rectangle(out, (0, 0), (tw + 10, th + base + 8), HUD_BG, -1)
    cv2.putText(out, text, (5, th + 4), FONT, fs, HUD_FG, thick, cv2.LINE_AA)
