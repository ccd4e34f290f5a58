"""Small faces in large frames: short-range BlazeFace over a pyramid of windows, merged by weighted NMS.

Letterboxed into 128x128, a 1080p frame shrinks 15x and a 90 px face becomes 6 px. Short-range
BlazeFace needs a face of about 32 input pixels (on FER-2013 crops: 90 % found at 32 px, 48 % at
24 px, 12 % at 20 px) and finds faces up to about 160 input pixels at one scale. The network is
fully convolutional, so it also runs on inputs larger than 128x128 (any multiple of 16), which
scans a big region in one call without re-computing overlaps.

The scan of a frame (H, W), `plan_scan`:

- **coarse**: the whole frame letterboxed into 128x128, as `BlazeFaceDetector` does: faces from
  about max(H, W) / 4;
- **levels**: scale s0 = min(1, 32 / min_face_px) input px per frame px, then s0 / 3, s0 / 9, ...
  while finer than the coarse pass. A level is cut into `tile_px` square windows that overlap by
  128 input px, more than the largest face a level is responsible for (96 px; the next level
  finds it at >= 32 px), so every face lies whole inside some window. A detection touching a window edge that lies
  inside the frame is dropped: its face is cut there, and a neighbour sees it whole;
- **regions of interest**: around each face seen in the last `roi_frames` frames, a 128x128
  window in which it is about 72 px wide.

A full scan runs every window. On a stream (video, camera) the detector runs the coarse pass and
the regions of interest every frame, and `tiles_per_frame` level windows per frame, so the cost
per frame stays bounded. A sure face whose surroundings have not changed in the thumbnail since its
region last ran keeps that detection for up to `carry_frames` frames instead (edge.motion; a still
crowd runs about a third of its regions). Which tiles: first those where the frame changed since
they last ran (a motion prior: a face that walks in is looked for on the next frame), then those
waiting longest.
A still scene is therefore a plain round-robin (a cycle is 10 frames at 1080p with the defaults),
and no tile waits more than `MAX_WAIT_CYCLES` + 1 cycles, whatever moves elsewhere. The first
frame after `reset()` (and after the frame size changes) is a full scan, so stills and the first
frame of a video see every face. Detections go through a weighted non-maximum suppression per
window, then one across all windows of the frame, in frame pixels.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from edge.anchors import SHORT_RANGE, anchor_centres_px
from edge.boxes import iou_matrix, match_boxes, weighted_nms
from edge.interpreter import load_interpreter
from edge.motion import (CARRY_FRAMES, CHANGE_MIN_PX, CHANGE_LEVEL, CONFIDENT_SCORE, Thumbnail, carriable,
                         face_thumb_area, still)
from edge.types import Faces

FACE_INPUT_PX = 32  # smallest face (input px) the short-range network finds reliably
LEVEL_RATIO = 3.0  # scale between pyramid levels; a level finds faces of 32-96 input px
# Window overlap, input px: the largest face a level must see whole. A level's faces reach 96 px
# before the next level sees them at 32 px; 128 leaves a margin, as faces of 96-128 px at 32-43 px
# one level up were found in only ~70 % of group-scene frames.
OVERLAP_PX = 128
# Tiles scanned per streamed frame (after the first). Two: a 1080p cycle takes 10 frames instead
# of 20, which on group scenes (before the motion prior) raised recall on faces >= 48 px by 1-2
# points and on 32-47 px faces by 8, for ~25 % less speed; three found a little more but let
# through more false positives (precision 94 %).
TILES_PER_FRAME = 2
ROI_INPUT_PX = 128  # region-of-interest window side, input px
# A remembered face's size in its region-of-interest window. The network scores a face highest at
# 64-80 px of its 128 px input and much lower at 48 (one occluded face: 0.49 at 48 px, 0.68 at 64);
# a face whose score falls under the threshold is lost until its tile comes round again. On seed-0
# group scenes (tuning set) 72 px raised 1080p recall on faces >= 48 px from 83.2 % to 85.6 %
# at the same precision; 48, 56 and 64 px, and the face's own size up to 72 px, did worse.
ROI_FACE_INPUT_PX = 72
EDGE_PX = 2.0  # a box within this many input px of an inner window edge is cut by it
TRACK_IOU = 0.3  # a detection continues a remembered face when their boxes overlap this much
MAX_REMEMBERED = 64  # bound on remembered faces (regions of interest per frame)
# Many windows see much background, and textures fire the network at scores 0.55-0.7. A face seen
# for the first time is therefore looked at again in two region-of-interest windows (face 48 and
# 72 px wide), and kept only when both find it at >= VERIFY_SCORE, unless its own score is already
# >= CONFIDENT_SCORE. On group scenes (seed 0, full scans) this cut false positives ~20x at
# a cost of ~5 % of the faces, where raising the threshold alone to the same precision lost ~20 %.
CANDIDATE_SCORE = 0.4  # windows report detections from this score; verification decides
# The default threshold of tiled scans, for faces already seen (new ones pass verification). Lower
# than a whole-frame pass's (edge.detector.DEFAULT_SCORE_THRESHOLD, 0.65), which has no such check:
# on group scenes 0.65 here cut 1080p recall from 85 % to 70 % at the same precision (100 %).
TILES_SCORE_THRESHOLD = 0.5
VERIFY_SCORE = 0.6
VERIFY_FACE_PX = (48, 72)
# The motion prior (change as edge.motion measures it): per tile against the thumbnail it last ran
# on, outside the remembered faces (they move, and their regions of interest follow them). With the
# round-robin alone, faces that appeared mid-stream in 1080p group scenes (seed 1) were found after
# a median of 5 frames, up to 8.
# Tiles that waited this many round-robin cycles run first. When motion keeps the budget busy, they
# all come due at once and take a further cycle to run: no tile waits more than one cycle more.
MAX_WAIT_CYCLES = 2
SCORE_CLIP = 100.0  # as MediaPipe, logits are clipped before the sigmoid
ALIGN = 16  # the network's largest stride: input sides are multiples of it


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True, slots=True)
class Window:
    """One network call: the input pixel (u, v) samples frame pixel (x + u / scale, y + v / scale)."""

    x: float  # frame px at the input's left edge
    y: float  # frame px at the input's top edge
    scale: float  # input px per frame px
    height: int  # input px, a multiple of ALIGN
    width: int
    kind: str  # coarse | tile | roi

    @property
    def pixels(self) -> int:
        return self.height * self.width


def _ceil_to(v: float, step: int) -> int:
    return int(max(step, math.ceil(v / step) * step))


def _starts(length: float, tile: int, overlap: int) -> list[int]:
    """Window starts (input px) covering [0, length) with tiles of `tile` overlapping by `overlap`."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    n = int(math.ceil((length - tile) / stride)) + 1
    last = int(math.ceil(length)) - tile
    # Evenly spread, first at 0 and last flush with the end: overlaps are >= `overlap`.
    return sorted({int(round(i * last / (n - 1))) for i in range(n)})


def coarse_window(height: int, width: int, size: int = SHORT_RANGE.input_size) -> Window:
    """The whole frame letterboxed (centred) into a size x size input."""
    scale = size / max(height, width)
    pad_x, pad_y = (size - width * scale) / 2.0, (size - height * scale) / 2.0
    return Window(x=-pad_x / scale, y=-pad_y / scale, scale=scale, height=size, width=size, kind="coarse")


def plan_scan(height: int, width: int, min_face_px: float, tile_px: int = 384) -> tuple[Window, tuple[Window, ...]]:
    """The coarse window and the level windows (finest level first) of a full scan of a frame."""
    if min_face_px <= 0:
        raise ValueError(f"min_face_px must be > 0, got {min_face_px}")
    if tile_px < 2 * OVERLAP_PX or tile_px % ALIGN:
        raise ValueError(f"tile_px must be a multiple of {ALIGN} and >= {2 * OVERLAP_PX}, got {tile_px}")
    coarse = coarse_window(height, width)
    tiles: list[Window] = []
    scale = min(1.0, FACE_INPUT_PX / float(min_face_px))
    # A level is worth running while it finds faces the coarse pass would see at < 32 px.
    while scale > coarse.scale * 1.5:
        sw, sh = width * scale, height * scale
        tw = tile_px if sw > tile_px else _ceil_to(sw, ALIGN)
        th = tile_px if sh > tile_px else _ceil_to(sh, ALIGN)
        for v in _starts(sh, th, OVERLAP_PX):
            for u in _starts(sw, tw, OVERLAP_PX):
                tiles.append(Window(x=u / scale, y=v / scale, scale=scale, height=th, width=tw, kind="tile"))
        scale /= LEVEL_RATIO
    return coarse, tuple(tiles)


def roi_window(box_xyxy: np.ndarray, face_input_px: float = ROI_FACE_INPUT_PX) -> Window:
    """A ROI_INPUT_PX square window centred on a face box, in which the face is face_input_px wide."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    side = max(x2 - x1, y2 - y1, 1.0)
    scale = face_input_px / side
    half = ROI_INPUT_PX / (2.0 * scale)
    return Window(x=(x1 + x2) / 2.0 - half, y=(y1 + y2) / 2.0 - half, scale=scale,
                  height=ROI_INPUT_PX, width=ROI_INPUT_PX, kind="roi")


class _Net:
    """The short-range network allocated for one input shape, with its anchors and buffers."""

    def __init__(self, model_path: str, height: int, width: int, num_threads: int | None):
        self.interp = load_interpreter(model_path, num_threads)
        inp = self.interp.get_input_details()[0]
        if inp["dtype"] != np.float32 or tuple(inp["shape"][1:]) != (128, 128, 3):
            raise ValueError(f"{model_path}: input {tuple(inp['shape'])} is not the short-range BlazeFace "
                             "input (1, 128, 128, 3) float32; tiling needs the short-range model")
        self.input_index = inp["index"]
        if (height, width) != (128, 128):
            self.interp.resize_tensor_input(self.input_index, [1, height, width, 3])
            self.interp.allocate_tensors()
        self.anchors = anchor_centres_px(SHORT_RANGE, height, width)  # (N, 2) input px
        n = self.anchors.shape[0]
        self.regressor_index = self.score_index = None
        for out in self.interp.get_output_details():
            shape = tuple(out["shape"])
            if shape == (1, n, 16):
                self.regressor_index = out["index"]
            elif shape == (1, n, 1):
                self.score_index = out["index"]
        if self.regressor_index is None or self.score_index is None:
            raise ValueError(f"{model_path}: at input {height}x{width} the outputs do not have {n} anchors")
        self.canvas = np.zeros((height, width, 3), np.uint8)  # RGB; padding stays black
        self.input = np.zeros((1, height, width, 3), np.float32)
        self.placed: tuple[int, int, int, int] | None = None  # the canvas area the last image filled


class _TileSchedule:
    """Which level windows a streamed frame runs: changed ones first, then the longest waiting.

    Holds one gray thumbnail per pyramid level (an edge.motion.Thumbnail's size, uint8), in which
    each tile's area keeps what that tile last ran on; tiles of one level overlap, and a face inside an
    overlap is whole in either tile, so the tile that runs may update the shared area.
    """

    def __init__(self, tiles: tuple[Window, ...], height: int, width: int, budget_px: int):
        self.pixels = np.array([t.pixels for t in tiles], np.int64)
        self.budget_px = int(budget_px)
        self.thumbnail = Thumbnail(height, width)
        sx, sy = self.thumbnail.scale
        thumb_w, thumb_h = self.thumbnail.size
        scales = sorted({t.scale for t in tiles})
        self.level = np.array([scales.index(t.scale) for t in tiles], np.int64)
        self.areas = []  # (y0, y1, x0, x1) thumbnail px per tile
        for t in tiles:
            x0, y0 = max(0.0, t.x), max(0.0, t.y)
            x1, y1 = min(float(width), t.x + t.width / t.scale), min(float(height), t.y + t.height / t.scale)
            self.areas.append((int(y0 * sy), int(math.ceil(y1 * sy)), int(x0 * sx), int(math.ceil(x1 * sx))))
        self.scale = (sx, sy)
        cycle = int(math.ceil(self.pixels.sum() / self.budget_px))
        self.max_wait = MAX_WAIT_CYCLES * max(cycle, 1)
        self.seen = np.zeros((len(scales), thumb_h, thumb_w), np.uint8)
        self.age = np.zeros(len(tiles), np.int64)  # frames since each tile last ran
        self._moved = np.zeros_like(self.seen)  # 1 where a thumbnail pixel changed, per level (reused)

    def restart(self, thumb: np.ndarray) -> None:
        """Every tile has just run on the frame of this thumbnail (a full scan)."""
        self.seen[:] = thumb[None]
        self.age[:] = 0

    def changed_px(self, thumb: np.ndarray, faces_xyxy: np.ndarray) -> np.ndarray:
        """(n_tiles,) thumbnail pixels that changed since each tile last ran, outside the faces."""
        moved = self._moved
        for level, seen in enumerate(self.seen):
            cv2.absdiff(seen, thumb, dst=moved[level])
            cv2.threshold(moved[level], CHANGE_LEVEL, 1, cv2.THRESH_BINARY, dst=moved[level])
        for box in faces_xyxy:
            moved[(slice(None), *face_thumb_area(box, self.scale))] = 0
        return np.array([np.count_nonzero(moved[lv, y0:y1, x0:x1])
                         for lv, (y0, y1, x0, x1) in zip(self.level, self.areas)], np.int64)

    def next(self, thumb: np.ndarray, faces_xyxy: np.ndarray) -> tuple[int, ...]:
        """The tiles to run on the frame of this thumbnail, within the pixel budget (at least one)."""
        changed = self.changed_px(thumb, faces_xyxy) >= CHANGE_MIN_PX
        oldest = np.argsort(-self.age, kind="stable")  # ties keep plan order: a round-robin
        picked, spent = [], 0

        def take(t: int) -> None:
            nonlocal spent
            if t not in picked and (not picked or spent + self.pixels[t] <= self.budget_px):
                picked.append(t)
                spent += int(self.pixels[t])

        for t in oldest[self.age[oldest] >= self.max_wait].tolist():
            take(t)
        for t in oldest[changed[oldest]].tolist():
            take(t)
        for t in oldest.tolist():
            take(t)
        self.age += 1
        for t in picked:
            self.age[t] = 0
            y0, y1, x0, x1 = self.areas[t]
            self.seen[self.level[t], y0:y1, x0:x1] = thumb[y0:y1, x0:x1]
        return tuple(sorted(picked))


class TiledDetector:
    """Short-range BlazeFace over coarse, tiled and region-of-interest windows (see the module doc).

    `detect(image_bgr)` -> Faces in frame pixels. One detector serves one thread: it owns one
    interpreter per window shape and remembers the faces of the last frames of its stream.
    `stream=False` makes every frame a full scan (unrelated stills).
    """

    def __init__(self, model_path: str | os.PathLike, *, score_threshold: float = TILES_SCORE_THRESHOLD,
                 iou_threshold: float = 0.3,
                 num_threads: int | None = None, min_face_px: float = 40.0, tile_px: int = 384,
                 tiles_per_frame: int = TILES_PER_FRAME, roi_frames: int = 5, carry_frames: int = CARRY_FRAMES,
                 stream: bool = True):
        if not 0.0 < score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in (0, 1), got {score_threshold}")
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"{model_path}: model file not found")
        plan_scan(480, 640, min_face_px, tile_px)  # validates the geometry arguments
        self.model_path = str(model_path)
        self.full_range = False
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.min_face_px = float(min_face_px)
        self.tile_px = int(tile_px)
        if tiles_per_frame < 1:
            raise ValueError(f"tiles_per_frame must be >= 1, got {tiles_per_frame}")
        self.budget_px = int(tiles_per_frame) * self.tile_px ** 2  # input pixels of tiles per frame
        self.roi_frames = int(roi_frames)
        if carry_frames < 0:
            raise ValueError(f"carry_frames must be >= 0, got {carry_frames}")
        self.carry_frames = int(carry_frames)
        self.stream = bool(stream)
        # Unlike one 128x128 pass, a tiled frame is ~30 ms of network work, and XNNPACK splits it
        # well over cores: 1080p with 8 faces ran at 35.5 frames/s with 2 interpreter threads here
        # against 31.5 with 2 for the tiles only and 26.1 with 1 (`fer-edge bench`, idle 2 cores).
        self._num_threads = num_threads if num_threads is not None else min(2, os.cpu_count() or 1)
        self._logit_threshold = _logit(min(CANDIDATE_SCORE, self.score_threshold))
        self._verify_logit = _logit(VERIFY_SCORE)
        self._nets: dict[tuple[int, int], _Net] = {}
        self._shape: tuple[int, int] | None = None
        self._coarse: Window | None = None
        self._tiles: tuple[Window, ...] = ()
        self._schedule: _TileSchedule | None = None
        self._full_next = True
        self._memory = np.zeros((0, 4), np.float32)  # remembered face boxes, frame px
        self._missed = np.zeros((0,), np.int64)  # frames since each was last detected
        self._memory_kps = np.zeros((0, 6, 2), np.float32)  # their keypoints and scores, for carrying
        self._memory_scores = np.zeros((0,), np.float32)
        self._carried = np.zeros((0,), np.int64)  # frames each has been carried since its window last ran
        self._carry = np.zeros((0,), bool)  # which remembered faces this frame carries
        self._roi_seen: np.ndarray | None = None  # thumbnail as each face's window last saw it
        self._closed = False
        self._net(128, 128)  # fail now, not on the first frame, when the model is the wrong one
        self.windows_last_frame: tuple[str, ...] = ()  # kinds of the windows the last detect() ran
        self.tiles_last_frame: tuple[int, ...] = ()  # which of plan()'s tiles the last detect() ran
        self.carried_last_frame = 0  # remembered faces the last detect() carried without their window

    def __enter__(self) -> "TiledDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._nets.clear()
        self._closed = True

    def reset(self) -> None:
        """Forget remembered faces; the next frame is a full scan (a new, unrelated stream)."""
        self._memory = np.zeros((0, 4), np.float32)
        self._missed = np.zeros((0,), np.int64)
        self._memory_kps = np.zeros((0, 6, 2), np.float32)
        self._memory_scores = np.zeros((0,), np.float32)
        self._carried = np.zeros((0,), np.int64)
        self._carry = np.zeros((0,), bool)
        self._full_next = True

    def plan(self, height: int, width: int) -> tuple[Window, tuple[Window, ...]]:
        """The coarse and level windows of a full scan of a (height, width) frame."""
        return plan_scan(height, width, self.min_face_px, self.tile_px)

    def _net(self, height: int, width: int) -> _Net:
        net = self._nets.get((height, width))
        if net is None:
            net = self._nets[(height, width)] = _Net(self.model_path, height, width, self._num_threads)
        return net

    def _windows(self, image_bgr: np.ndarray) -> list[Window]:
        h, w = image_bgr.shape[:2]
        if self._shape != (h, w):
            self._shape = (h, w)
            self._coarse, self._tiles = self.plan(h, w)
            self._schedule = _TileSchedule(self._tiles, h, w, self.budget_px) if self._tiles else None
            self._roi_seen = np.zeros_like(self._schedule.seen[0]) if self._tiles else None
            self.reset()
        full = self._full_next or not self.stream
        self._full_next = False
        windows = [self._coarse]
        self._carry = np.zeros(len(self._memory), bool)
        if not self._tiles:
            self.tiles_last_frame = ()
            return windows
        if full:
            if self.stream:
                thumb = self._schedule.thumbnail(image_bgr)
                self._schedule.restart(thumb)
                self._roi_seen[:] = thumb
            self.tiles_last_frame = tuple(range(len(self._tiles)))
            return windows + list(self._tiles)
        thumb = self._schedule.thumbnail(image_bgr)
        coarse_scale = self._coarse.scale
        sure = carriable(self._memory, self._memory_scores)
        for k, box in enumerate(self._memory):
            roi = roi_window(box)
            if roi.scale <= coarse_scale * 1.5:  # the coarse pass already sees it at >= 48 px
                continue
            area = face_thumb_area(box, self._schedule.scale)
            if (self._missed[k] == 0 and self._carried[k] < self.carry_frames and sure[k]
                    and still(thumb[area], self._roi_seen[area])):
                self._carry[k] = True
            else:
                windows.append(roi)
                self._roi_seen[area] = thumb[area]
        self.tiles_last_frame = self._schedule.next(thumb, self._memory)
        return windows + [self._tiles[t] for t in self.tiles_last_frame]

    def _run(self, image_bgr: np.ndarray, win: Window, logit_threshold: float | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw detections of one window: boxes (k, 4) and keypoints (k, 6, 2) in frame px, scores (k,)."""
        if logit_threshold is None:
            logit_threshold = self._logit_threshold
        h, w = image_bgr.shape[:2]
        net = self._net(win.height, win.width)
        # The frame pixels the window covers, and where they land in the input.
        ix0, iy0 = max(int(math.ceil(win.x)), 0), max(int(math.ceil(win.y)), 0)
        ix1 = min(int(math.floor(win.x + win.width / win.scale)), w)
        iy1 = min(int(math.floor(win.y + win.height / win.scale)), h)
        u0 = max(0, int(round((ix0 - win.x) * win.scale)))
        v0 = max(0, int(round((iy0 - win.y) * win.scale)))
        u1 = min(win.width, int(round((ix1 - win.x) * win.scale)))
        v1 = min(win.height, int(round((iy1 - win.y) * win.scale)))
        if ix1 <= ix0 or iy1 <= iy0 or u1 <= u0 or v1 <= v0:
            return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros((0,), np.float32)
        placed = (u0, v0, u1, v1)
        if net.placed != placed:
            net.canvas[:] = 0
            net.placed = placed
        region = image_bgr[iy0:iy1, ix0:ix1]
        interpolation = cv2.INTER_AREA if (u1 - u0) < (ix1 - ix0) else cv2.INTER_LINEAR
        resized = cv2.resize(region, (u1 - u0, v1 - v0), interpolation=interpolation)
        net.canvas[v0:v1, u0:u1] = resized[:, :, ::-1]  # BGR -> RGB
        np.multiply(net.canvas, 1.0 / 127.5, out=net.input[0], casting="unsafe")
        net.input -= 1.0
        interp = net.interp
        interp.set_tensor(net.input_index, net.input)
        interp.invoke()
        logits = interp.get_tensor(net.score_index)[0, :, 0]
        keep = np.flatnonzero(logits >= logit_threshold)
        if keep.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros((0,), np.float32)
        raw = interp.get_tensor(net.regressor_index)[0, keep]  # (k, 16) input-px offsets from the anchor
        anchors = net.anchors[keep]
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] * 0.5
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        # A face cut by a window edge inside the frame is seen whole by a neighbouring window.
        cut = np.zeros(len(keep), bool)
        if ix0 > 0:
            cut |= boxes[:, 0] <= u0 + EDGE_PX
        if iy0 > 0:
            cut |= boxes[:, 1] <= v0 + EDGE_PX
        if ix1 < w:
            cut |= boxes[:, 2] >= u1 - EDGE_PX
        if iy1 < h:
            cut |= boxes[:, 3] >= v1 - EDGE_PX
        if win.kind == "coarse":
            cut[:] = False
        ok = ~cut
        # Input px -> frame px, with the scale the resize really used on each axis.
        sx, sy = (u1 - u0) / (ix1 - ix0), (v1 - v0) / (iy1 - iy0)
        offset = np.array([ix0 - u0 / sx, iy0 - v0 / sy], np.float32)
        inv = np.array([1.0 / sx, 1.0 / sy], np.float32)
        boxes = (boxes[ok].reshape(-1, 2, 2) * inv + offset).reshape(-1, 4)
        keypoints = keypoints[ok] * inv + offset
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep][ok], -SCORE_CLIP, SCORE_CLIP)))
        # One box per face and window first, as MediaPipe does per network pass; averaging raw
        # anchors of several scales together in one go let stray boxes pull a face's box away.
        return weighted_nms(boxes.astype(np.float32), keypoints.astype(np.float32), scores.astype(np.float32),
                            self.iou_threshold)

    def detect(self, image_bgr: np.ndarray) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame, in frame pixels."""
        if self._closed:
            raise RuntimeError("detector is closed")
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image_bgr.shape}")
        h, w = image_bgr.shape[:2]
        windows = self._windows(image_bgr)
        self.windows_last_frame = tuple(win.kind for win in windows)
        self.carried_last_frame = int(self._carry.sum())
        parts = [self._run(image_bgr, win) for win in windows]
        if self._carry.any():  # still faces keep the detection their window last gave
            parts.append((self._memory[self._carry], self._memory_kps[self._carry], self._memory_scores[self._carry]))
        boxes = np.concatenate([p[0] for p in parts])
        keypoints = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores, self.iou_threshold)
        keep = self._accept(image_bgr, boxes, scores)
        boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
        xyxy = np.floor(boxes)
        np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
        xyxy = xyxy.astype(np.int32)
        visible = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        faces = Faces(xyxy[visible], scores[visible], keypoints[visible])
        if self.stream:
            self._remember(boxes[visible], keypoints[visible], scores[visible])
        return faces

    def _accept(self, image_bgr: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Which merged detections are faces: remembered ones at the score threshold, new ones
        when confident or verified in two region-of-interest windows."""
        keep = np.zeros(len(scores), bool)
        known = np.zeros(len(scores), bool)
        if self.stream and len(self._memory) and len(scores):
            det, _, _ = match_boxes(boxes, self._memory, TRACK_IOU)
            known[det] = True
        keep[known] = scores[known] >= self.score_threshold
        for i in np.flatnonzero(~known):
            if scores[i] >= max(CONFIDENT_SCORE, self.score_threshold):
                keep[i] = True
            else:
                keep[i] = all(self._confirms(image_bgr, boxes[i], px) for px in VERIFY_FACE_PX)
        return keep

    def _confirms(self, image_bgr: np.ndarray, box: np.ndarray, face_input_px: float) -> bool:
        found, _, _ = self._run(image_bgr, roi_window(box, face_input_px), self._verify_logit)
        return bool(len(found)) and bool((iou_matrix(box[None], found)[0] > TRACK_IOU).any())

    def _remember(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> None:
        """Faces of this frame continue or start remembered faces; unseen ones age out."""
        det, mem, _ = match_boxes(boxes, self._memory, TRACK_IOU)
        missed = self._missed + 1
        missed[mem] = 0
        carried = self._carried.copy()
        carried[mem] = np.where(self._carry[mem], carried[mem] + 1, 0)
        memory, kps, sc = self._memory.copy(), self._memory_kps.copy(), self._memory_scores.copy()
        memory[mem], kps[mem], sc[mem] = boxes[det], keypoints[det], scores[det]
        new = np.setdiff1d(np.arange(len(boxes)), det)
        memory = np.concatenate([memory, boxes[new]])
        kps = np.concatenate([kps, keypoints[new]])
        sc = np.concatenate([sc, scores[new]])
        missed = np.concatenate([missed, np.zeros(len(new), np.int64)])
        carried = np.concatenate([carried, np.zeros(len(new), np.int64)])
        keep = np.flatnonzero(missed <= self.roi_frames)
        keep = keep[np.argsort(missed[keep], kind="stable")][:MAX_REMEMBERED]
        self._memory, self._missed = memory[keep].astype(np.float32), missed[keep]
        self._memory_kps, self._memory_scores = kps[keep].astype(np.float32), sc[keep].astype(np.float32)
        self._carried = carried[keep]


# Frames up to this long side run the whole-frame detector alone: a webcam's 640x480 face is
# large, and one 128x128 pass keeps that case as fast as it was. Larger frames are tiled.
AUTO_TILES_ABOVE_PX = 960


class AutoScanDetector:
    """The whole-frame detector for frames up to `tiles_above_px` on their long side, tiles above.

    Both detectors are built up front, so the first large frame does not pay for loading.
    """

    def __init__(self, frame_detector, tiled: TiledDetector, tiles_above_px: int = AUTO_TILES_ABOVE_PX):
        self.frame_detector = frame_detector
        self.tiled = tiled
        self.tiles_above_px = int(tiles_above_px)
        self.model_path = tiled.model_path
        self.full_range = False
        self.score_threshold = tiled.score_threshold

    def __enter__(self) -> "AutoScanDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.frame_detector.close()
        self.tiled.close()

    def reset(self) -> None:
        self.tiled.reset()

    def uses_tiles(self, height: int, width: int) -> bool:
        return max(height, width) > self.tiles_above_px

    def detect(self, image_bgr: np.ndarray) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame, in frame pixels."""
        h, w = image_bgr.shape[:2]
        if self.uses_tiles(h, w):
            return self.tiled.detect(image_bgr)
        return self.frame_detector.detect(image_bgr)

