"""`annotated = draw(image_bgr, result)`: boxes, track ids, labels, probability bars and a HUD.

On the hot path, so only OpenCV primitives on the frame (no alpha blending of the whole image).
Shared by the run window, `--save-video`, the web UI and the benchmarks.

Crowds decide the layout (`layout()`): every label is a solid block kept inside the frame and
placed where it covers the fewest pixels of the HUD, other labels and other faces' boxes
(above the box, else below, else inside its top edge, ...). The 7-row probability panel is drawn
only where it fits beside its box without covering anything; otherwise the label carries a
compact stacked bar of the same probabilities. Label text is black or white, whichever
contrasts more with the label's colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

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
PANEL_BG = (32, 32, 32)
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)

# How much covering each kind of pixel costs a label position: the HUD and the hint never
# (unless nothing else is left), other labels hardly ever, other faces rarely; its own face
# only a little (a label inside its own box top is fine when nothing outside fits).
_COST_HUD = 1000.0
_COST_LABEL = 50.0
_COST_OTHER_FACE = 10.0
_COST_OWN_FACE = 1.0


def label_color(label: str, index: int = 0) -> tuple[int, int, int]:
    """The BGR colour used for a label's boxes and bars."""
    return PALETTE.get(label, _CYCLE[index % len(_CYCLE)])


def _luminance(bgr) -> float:
    """WCAG relative luminance of an sRGB colour given as BGR 0-255."""
    c = np.asarray(bgr, np.float64)[::-1] / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2])


def text_color_on(bg_bgr) -> tuple[int, int, int]:
    """Black or white, whichever reads better on this background."""
    return _text_color_on(tuple(int(v) for v in bg_bgr))


def contrast_ratio(a_bgr, b_bgr) -> float:
    """WCAG contrast ratio of two BGR colours, 1 (none) to 21 (black on white)."""
    la, lb = _luminance(a_bgr), _luminance(b_bgr)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


@lru_cache(maxsize=64)
def _text_color_on(bg_bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    return BLACK if contrast_ratio(BLACK, bg_bgr) >= contrast_ratio(WHITE, bg_bgr) else WHITE


# A text's size is the sum of its glyphs' advances and the deepest of their descents. Hershey
# simplex digits share one advance and have one of two descents (round ones dip below the
# line), so a text measures like the one with each digit replaced by the first digit of its
# kind, "#7 happy 87%" like "#1 happy 01%". The labels and HUD of a stream then take their sizes
# from a small cache rather than an OpenCV call each, which, like every OpenCV call, hands the
# GIL to the detection thread and waits to win it back. (The kinds are measured at a large
# scale, where no rounding hides a difference.)
def _digit_kinds() -> dict[int, str]:
    first: dict[tuple, str] = {}
    return {ord(d): first.setdefault(cv2.getTextSize(d, FONT, 50.0, 1), d) for d in "0123456789"}


_DIGIT_KINDS = _digit_kinds()


def text_size(text: str, font_scale: float, thickness: int) -> tuple[tuple[int, int], int]:
    """cv2.getTextSize(text, FONT, font_scale, thickness): ((width, height), baseline)."""
    return _text_size(text.translate(_DIGIT_KINDS), font_scale, thickness)


@lru_cache(maxsize=1024)
def _text_size(text: str, font_scale: float, thickness: int) -> tuple[tuple[int, int], int]:
    return cv2.getTextSize(text, FONT, font_scale, thickness)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Text and block sizes for one frame size (they follow the frame's width)."""

    scale: float
    thick: int
    caption_fs: float
    pad: int
    strip_h: int  # the compact probability bar under a label
    row_h: int  # one row of the full probability panel
    row_fs: float
    name_w: int
    bar_w: int
    hud_fs: float
    caption_base: int  # Hershey text: height and baseline depend on the size only, not the text
    hud_th: int

    @classmethod
    @lru_cache(maxsize=8)
    def for_width(cls, w: int) -> "Metrics":
        scale = float(np.clip(w / 1280.0, 0.6, 1.0))
        thick = 1 if w < 900 else 2
        row_fs = 0.33 * scale + 0.12
        name_w = cv2.getTextSize("sur", FONT, row_fs, 1)[0][0]
        caption_fs, hud_fs = 0.5 * scale + 0.15, 0.4 * scale + 0.2
        return cls(scale=scale, thick=thick, caption_fs=caption_fs, pad=max(2, round(3 * scale)),
                   strip_h=max(5, round(7 * scale)), row_h=max(10, round(15 * scale)), row_fs=row_fs,
                   name_w=name_w, bar_w=max(36, round(70 * scale)), hud_fs=hud_fs,
                   caption_base=cv2.getTextSize("Ag", FONT, caption_fs, thick)[1],
                   hud_th=cv2.getTextSize("Ag", FONT, hud_fs, thick)[0][1])


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything goes on one frame; rectangles are x1, y1, x2, y2 (x2, y2 exclusive).

    captions: (n, 4) int32, each face's label block (the compact bar included when drawn);
    panels: (n, 4) int32, each face's full probability panel, rows of -1 where it did not fit.
    """

    hud: tuple[int, int, int, int] | None
    hint: tuple[int, int, int, int] | None
    captions: np.ndarray
    panels: np.ndarray
    compact: np.ndarray  # (n,) bool: the label carries the compact bar

    @property
    def has_panel(self) -> np.ndarray:
        return self.panels[:, 0] >= 0


# A face turned too far for its label (FrameResult.uncertain): a grey box, and "?" before the label.
UNCERTAIN_COLOR = (128, 128, 128)  # BGR


def _caption_text(result: FrameResult, i: int, li: int) -> str:
    tid = int(result.track_ids[i]) if len(result.track_ids) > i else -1
    unsure = "? " if result.is_uncertain[i] else ""
    return f"{'#%d ' % tid if tid >= 0 else ''}{unsure}{result.labels[li]} {result.probs[i, li] * 100:.0f}%"


def _hud_text(result: FrameResult, fps: float | None) -> str:
    t = result.timings
    parts = []
    if fps is not None:
        parts.append(f"{fps:.1f} fps")
    parts.append(f"det {t.detect_ms:.1f} ms  cls {t.preprocess_ms + t.classify_ms:.1f} ms  "
                 f"total {t.total_ms:.1f} ms  faces {len(result.faces)}")
    return "  |  ".join(parts)


def _strip_rect(text: str, m: Metrics, w: int, h: int, top: bool, fs: float) -> tuple[int, int, int, int]:
    (tw, th), base = text_size(text, fs, m.thick)
    bw, bh = min(w, tw + 10), min(h, th + base + 8)
    return (0, 0, bw, bh) if top else (0, h - bh, bw, h)


def _overlap_areas(rects: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(c, k) overlap area of each of rects (c, 4) with each of others (k, 4)."""
    a, b = rects[:, None, :], others[None, :, :]
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return (np.maximum(iw, 0) * np.maximum(ih, 0)).astype(np.float64)


def layout(result: FrameResult, shape: tuple[int, ...], fps: float | None = None, *, bars: bool = True,
           hud: bool = True, hint: str | None = None) -> Layout:
    """Place the HUD, the hint and every face's label and probability bars on an (H, W) frame."""
    h, w = int(shape[0]), int(shape[1])
    m = Metrics.for_width(w)
    n = len(result.faces)
    hud_rect = _strip_rect(_hud_text(result, fps), m, w, h, True, m.hud_fs) if hud else None
    hint_rect = _strip_rect(hint, m, w, h, False, m.hud_fs) if hint else None
    fixed = np.asarray([r for r in (hud_rect, hint_rect) if r is not None], np.int64).reshape(-1, 4)
    # A box outline is 2 px wide, centred on the box edge.
    boxes = np.asarray(result.faces.xyxy, np.int64).reshape(-1, 4) + np.array([-1, -1, 2, 2])
    label_idx = result.label_index
    nf = len(fixed)
    # Everything a label may cover, with what covering it costs, in one array so that each face
    # costs one overlap computation: the HUD and hint, every face's box, then the labels placed
    # so far (rows of -1 until placed, which overlap nothing).
    obstacles = np.concatenate([fixed, boxes, np.full((n, 4), -1, np.int64)])
    weights = np.concatenate([np.full(nf, _COST_HUD), np.full(n, _COST_OTHER_FACE), np.full(n, _COST_LABEL)])
    captions = obstacles[nf + n:]  # a view: placing a label makes it an obstacle for the next
    order = sorted(range(n), key=lambda i: (int(boxes[i, 1]), int(boxes[i, 0])))
    for i in order:
        text = _caption_text(result, i, int(label_idx[i]))
        (tw, th), base = text_size(text, m.caption_fs, m.thick)
        bw = min(w, tw + 2 * m.pad)
        bh = min(h, th + base + 2 * m.pad + (m.strip_h if bars else 0))
        x1, y1, x2, y2 = (int(v) for v in boxes[i])
        # In order of preference: above the box, below it, right-aligned above / below, inside
        # its top / bottom edge, beside it. Clamped into the frame; the cheapest one wins.
        x_max, y_max = w - bw, h - bh
        rects = np.array([(x, y, x + bw, y + bh) for x, y in (
            (min(max(cx, 0), x_max), min(max(cy, 0), y_max))
            for cx, cy in ((x1, y1 - bh), (x1, y2), (x2 - bw, y1 - bh), (x2 - bw, y2), (x1, y1), (x1, y2 - bh),
                           (x2, y1), (x1 - bw, y1)))], np.int64)
        weights[nf + i] = _COST_OWN_FACE
        cost = _overlap_areas(rects, obstacles) @ weights
        weights[nf + i] = _COST_OTHER_FACE
        captions[i] = rects[int(np.argmin(cost))]  # the first of equal costs: the preferred place
    captions = captions.astype(np.int32)
    panels = np.full((n, 4), -1, np.int32)
    if bars and n:
        pw = m.pad + m.name_w + 4 + m.bar_w + m.pad
        ph = len(result.labels) * m.row_h + 2 * m.pad
        taken = np.concatenate([obstacles, np.full((n, 4), -1, np.int64)])  # + the panels placed so far
        for i in order:
            x1, y1, x2, y2 = (int(v) for v in boxes[i])
            py = min(max(y1, 0), h - ph)
            for px in (x2 + 2, x1 - 2 - pw):  # right of the box, else left of it
                r = np.array([[px, py, px + pw, py + ph]], np.int64)
                if px >= 0 and px + pw <= w and py >= 0 and not _overlap_areas(r, taken).any():
                    panels[i] = taken[nf + 2 * n + i] = r[0]
                    break
    compact = np.zeros((n,), bool) if not bars else panels[:, 0] < 0
    return Layout(hud=hud_rect, hint=hint_rect, captions=captions, panels=panels, compact=compact)


def draw(image_bgr: np.ndarray, result: FrameResult, fps: float | None = None, *, bars: bool = True,
         hud: bool = True, hint: str | None = None, copy: bool = True) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> annotated (H, W, 3) uint8 BGR (a copy unless copy=False).

    Boxes are in the colour of the face's label, with "#id label 87%" on a solid block next to
    the box (a face turned too far for its label: a thin grey box and "#id ? label 87%"); `bars`: the class probabilities as a panel beside the box where it fits, else as a
    compact bar under the label; `hud`: frames/s and stage latencies, top left; `hint`: one
    line of text at the bottom left (such as the keys a window listens to).
    """
    out = image_bgr.copy() if copy else image_bgr
    lay = layout(result, out.shape, fps, bars=bars, hud=hud, hint=hint)
    m = Metrics.for_width(out.shape[1])
    label_idx = result.label_index
    colors = [label_color(result.labels[k], k) for k in range(len(result.labels))]
    unsure = result.is_uncertain
    for i in range(len(result.faces)):
        x1, y1, x2, y2 = (int(v) for v in result.faces.xyxy[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), UNCERTAIN_COLOR if unsure[i] else colors[int(label_idx[i])],
                      1 if unsure[i] else 2)
    for i in range(len(result.faces)):
        li = int(label_idx[i])
        color = UNCERTAIN_COLOR if unsure[i] else colors[li]
        cx1, cy1, cx2, cy2 = (int(v) for v in lay.captions[i])
        _fill(out, cx1, cy1, cx2, cy2, color)
        text = _caption_text(result, i, li)
        text_bottom = cy2 - (m.strip_h if lay.compact[i] else 0)
        cv2.putText(out, text, (cx1 + m.pad, text_bottom - m.pad - m.caption_base), FONT,
                    m.caption_fs, text_color_on(color), m.thick, cv2.LINE_AA)
        if lay.compact[i]:
            _compact_bar(out, result.probs[i], colors, (cx1, text_bottom, cx2, cy2))
        elif lay.has_panel[i]:
            _panel(out, result, i, colors, tuple(int(v) for v in lay.panels[i]), m)
    if lay.hud is not None:
        _text_strip(out, _hud_text(result, fps), lay.hud, m)
    if lay.hint is not None:
        _text_strip(out, hint, lay.hint, m)
    return out


def _fill(out: np.ndarray, x1: int, y1: int, x2: int, y2: int, color) -> None:
    """A solid rectangle, x2 and y2 exclusive, as a numpy slice rather than cv2.rectangle: every
    OpenCV call releases the GIL and must win it back, and with the detection thread running
    the dozen small fills of a frame cost twice their time in those hand-overs."""
    h, w = out.shape[:2]
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(max(x2, 0), w), min(max(y2, 0), h)
    if x2 <= x1 or y2 <= y1:
        return
    if out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8 and out.flags.c_contiguous:
        # Each row as one run of bytes: numpy broadcasts a 3-value colour pixel by pixel, which
        # is several times slower on the caption and bar areas.
        out.reshape(h, w * 3)[y1:y2, 3 * x1:3 * x2] = _colour_row(tuple(color), w)[:3 * (x2 - x1)]
    else:
        out[y1:y2, x1:x2] = color


@lru_cache(maxsize=64)
def _colour_row(color: tuple, width: int) -> np.ndarray:
    """(3 * width,) uint8: `color` (B, G, R) repeated along a frame row."""
    row = np.tile(np.asarray(color, np.uint8), width)
    row.flags.writeable = False
    return row


def _compact_bar(out: np.ndarray, probs: np.ndarray, colors, rect: tuple[int, int, int, int]) -> None:
    """All class probabilities as one stacked bar, on a dark ground."""
    x1, y1, x2, y2 = rect
    _fill(out, x1, y1, x2, y2, PANEL_BG)
    width = x2 - x1
    edges = np.round(np.concatenate([[0.0], np.cumsum(probs)]) / max(float(probs.sum()), 1e-6) * width).astype(int)
    for k in range(len(probs)):
        a, b = x1 + edges[k], x1 + edges[k + 1]
        if b - 1 > a:  # a 1 px gap of dark ground between segments
            _fill(out, a, y1 + 1, b - 1, y2 - 1, colors[k])


def _panel(out: np.ndarray, result: FrameResult, i: int, colors, rect: tuple[int, int, int, int], m: Metrics) -> None:
    """One row per class on a dark panel: the 3-letter name in white, then its bar."""
    x1, y1, x2, y2 = rect  # inside the frame (layout only places panels that fit)
    out[y1:y2, x1:x2] = _panel_ground(m, tuple(result.labels))
    bx = x1 + m.pad + m.name_w + 4
    for k in range(len(result.labels)):
        fill = int(round(float(result.probs[i, k]) * m.bar_w))
        if fill > 0:
            y = y1 + m.pad + k * m.row_h
            _fill(out, bx, y + 2, bx + fill + 1, y + m.row_h - 1, colors[k])


@lru_cache(maxsize=8)
def _panel_ground(m: Metrics, labels: tuple[str, ...]) -> np.ndarray:
    """(ph, pw, 3) uint8 BGR: a panel without its bars, which only the probabilities change.
    Rendered once per frame width: its ~20 anti-aliased text and outline calls per face were
    half of the drawing time of a two-face frame."""
    pw = m.pad + m.name_w + 4 + m.bar_w + m.pad
    ph = len(labels) * m.row_h + 2 * m.pad
    ground = np.empty((ph, pw, 3), np.uint8)
    ground[:] = PANEL_BG
    bx = m.pad + m.name_w + 4
    for k, name in enumerate(labels):
        y = m.pad + k * m.row_h
        cv2.putText(ground, name[:3], (m.pad, y + m.row_h - 3), FONT, m.row_fs, WHITE, 1, cv2.LINE_AA)
        cv2.rectangle(ground, (bx, y + 2), (bx + m.bar_w, y + m.row_h - 2), (90, 90, 90), 1)
    ground.flags.writeable = False  # shared by every frame
    return ground


def _text_strip(out: np.ndarray, text: str, rect: tuple[int, int, int, int], m: Metrics) -> None:
    x1, y1, x2, y2 = rect
    _fill(out, x1, y1, x2, y2, HUD_BG)
    cv2.putText(out, text, (x1 + 5, y1 + 4 + m.hud_th), FONT, m.hud_fs, HUD_FG, m.thick, cv2.LINE_AA)
