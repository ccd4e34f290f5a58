"""Small faces in large frames: short-range BlazeFace over a pyramid of windows, merged by weighted NMS.

Letterboxed into 128x128, a 1080p frame shrinks 15x and a 90 px face becomes 6 px. Short-range
BlazeFace needs a face of about 32 input pixels (fewer and fewer are found below that) and finds
faces up to about 160 input pixels at one scale. The network is
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
region last ran keeps that detection for up to `carry_frames` frames instead (edge.detect.motion; a still
crowd runs about a third of its regions). Which tiles: first those where the frame changed since
they last ran (a motion prior: a face that walks in is looked for on the next frame), then those
waiting longest.
A still scene is therefore a plain round-robin (a cycle is 10 frames at 1080p with the defaults),
and no tile waits more than `MAX_WAIT_CYCLES` + 1 cycles, whatever moves elsewhere. The first
frame after `reset()` (and after the frame size changes) is a full scan, so stills and the first
frame of a video see every face. A full scan runs the coarse pass first and skips the level
windows that its faces fill for at least COVERED_SKIP of their area (a portrait: there is no
room left beside its face for one the levels would find; on a stream they run on the next frame).
Detections go through a weighted non-maximum suppression per window, then one across all windows
of the frame, in frame pixels.
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from edge.boxes import match_boxes, weighted_nms
from edge.detect.blazeface import ALIGN, check_image, check_score, frame_faces, logit
from edge.detect.confirm import TRACK_IOU, SecondLook, accept
from edge.detect.motion import (CARRY_FRAMES, CHANGE_LEVEL, CHANGE_MIN_PX, CONFIDENT_SCORE, HEAD_MARGIN, THUMB_DIV,
                                Thumbnail,
                                carriable, face_thumb_area, still)
from edge.detect.windows import FrameLevels, Window, WindowNets, coarse_window, roi_window
from edge.types import Faces

FACE_INPUT_PX = 32  # smallest face (input px) the short-range network finds reliably
LEVEL_RATIO = 3.0  # scale between pyramid levels; a level finds faces of 32-96 input px
# Window overlap, input px: the largest face a level must see whole. A level's faces reach 96 px
# before the next level sees them at 32 px; 128 leaves a margin, as faces of 96-128 px at 32-43 px
# one level up were missed in many group-scene frames.
OVERLAP_PX = 128
# A level no larger than this (input px) runs as one window: no overlap to pay for, no cut faces
# (a 640x480 frame's 40 px level is 512x384: two overlapping 384 px tiles would cover more pixels).
ONE_WINDOW_PX = 2 * 384 * 384
# Tiles scanned per streamed frame (after the first). Two: a 1080p cycle takes 10 frames instead
# of 20, which on group scenes raised recall, most on 32-47 px faces, for some speed; three found
# a little more but let through more false positives (`fer-edge bench crowd`).
TILES_PER_FRAME = 2
# A frame whose whole pyramid fits one frame's tile budget (640x480, 640x360: one window of ~17
# coarse passes) is not rescanned every frame: its tiles run where the frame changed (outside the
# heads of the faces followed), at most one pyramid's worth per MOTION_GAP_FRAMES frames (a face
# that walks in is found within about that), and otherwise once every REFRESH_FRAMES frames.
# Remembered faces keep their own windows every frame. This is what keeps a webcam's one-face
# frame near the cost of one whole-frame pass while faces from min_face_px are still found.
REFRESH_FRAMES = 60
# A shorter gap finds faces that walk into a small frame sooner and more of them, at the cost of more
# level windows (docs/detection.md, *Settings and their measurements*).
MOTION_GAP_FRAMES = 8
# Many windows see much background, and textures fire the network at scores 0.55-0.7. A face seen
# for the first time is therefore looked at again (edge.detect.confirm.SecondLook), unless its own score
# is already >= CONFIDENT_SCORE. On group scenes this cut false positives far more cheaply than
# raising the threshold alone, which lost many more faces for the same precision.
CANDIDATE_SCORE = 0.4  # windows report detections from this score; confirmation decides
# The default threshold for faces already seen (new ones need CONFIDENT_SCORE or the second look).
# A higher one here cost much 1080p group-scene recall at the same precision (`fer-edge bench threshold`).
TILES_SCORE_THRESHOLD = 0.5
MAX_REMEMBERED = 64  # bound on remembered faces (regions of interest per frame)
# A full scan skips a level window whose frame area is at least this much covered by the boxes of
# faces of the coarse pass (sure ones, and unsure ones that would cover it alone and are confirmed
# at once, `TiledDetector._open_tiles`): a portrait that one face fills has no room
# left there for the small faces the levels look for, and the levels, which see faces up to a
# fraction of the frame, do not find that face again. A group photo's faces leave the windows open.
COVERED_SKIP = 0.5
# Tiles that waited this many round-robin cycles run first. When motion keeps the budget busy, they
# all come due at once and take a further cycle to run: no tile waits more than one cycle more.
MAX_WAIT_CYCLES = 2


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
        if _ceil_to(sw, ALIGN) * _ceil_to(sh, ALIGN) <= ONE_WINDOW_PX:
            tiles.append(Window(x=0.0, y=0.0, scale=scale, height=_ceil_to(sh, ALIGN), width=_ceil_to(sw, ALIGN),
                                kind="tile"))
        else:
            tw = tile_px if sw > tile_px else _ceil_to(sw, ALIGN)
            th = tile_px if sh > tile_px else _ceil_to(sh, ALIGN)
            for v in _starts(sh, th, OVERLAP_PX):
                for u in _starts(sw, tw, OVERLAP_PX):
                    tiles.append(Window(x=u / scale, y=v / scale, scale=scale, height=th, width=tw, kind="tile"))
        scale /= LEVEL_RATIO
    return coarse, tuple(tiles)


class _TileSchedule:
    """Which level windows a streamed frame runs: changed ones first, then the longest waiting.

    Holds one gray thumbnail per pyramid level (an edge.detect.motion.Thumbnail's size, uint8), in which
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
        # Trickle: the whole pyramid fits one frame's budget (small frames), see REFRESH_FRAMES.
        self.trickle = cycle <= 1
        self.max_wait = REFRESH_FRAMES - 1 if self.trickle else MAX_WAIT_CYCLES * max(cycle, 1)
        self._credit_px = 0.0  # trickle: input px of changed tiles this stream may still run
        self._credit_step = self.pixels.sum() / MOTION_GAP_FRAMES
        self.seen = np.zeros((len(scales), thumb_h, thumb_w), np.uint8)
        self.age = np.zeros(len(tiles), np.int64)  # frames since each tile last ran
        self._moved = np.zeros_like(self.seen)  # 1 where a thumbnail pixel changed, per level (reused)

    def restart(self, thumb: np.ndarray) -> None:
        """Every tile has just run on the frame of this thumbnail (a full scan)."""
        self.seen[:] = thumb[None]
        self.age[:] = 0
        self._credit_px = 0.0

    def changed_px(self, thumb: np.ndarray, faces_xyxy: np.ndarray) -> np.ndarray:
        """(n_tiles,) thumbnail pixels that changed since each tile last ran, outside the faces' heads."""
        moved = self._moved
        for level, seen in enumerate(self.seen):
            cv2.absdiff(seen, thumb, dst=moved[level])
            cv2.threshold(moved[level], CHANGE_LEVEL, 1, cv2.THRESH_BINARY, dst=moved[level])
        for box in faces_xyxy:
            moved[(slice(None), *face_thumb_area(box, self.scale, HEAD_MARGIN))] = 0
        return np.array([np.count_nonzero(moved[lv, y0:y1, x0:x1])
                         for lv, (y0, y1, x0, x1) in zip(self.level, self.areas)], np.int64)

    def next(self, thumb: np.ndarray, faces_xyxy: np.ndarray) -> tuple[int, ...]:
        """The tiles to run on the frame of this thumbnail, within the pixel budget (at least one,
        except in trickle mode, where only overdue tiles and changed ones the credit allows run)."""
        changed = self.changed_px(thumb, faces_xyxy) >= CHANGE_MIN_PX
        oldest = np.argsort(-self.age, kind="stable")  # ties keep plan order: a round-robin
        picked, spent = [], 0
        if self.trickle:
            self._credit_px = min(self._credit_px + self._credit_step, float(self.pixels.max()))

        def take(t: int, credit: bool = False) -> None:
            nonlocal spent
            if t in picked or (picked and spent + self.pixels[t] > self.budget_px):
                return
            if credit:
                if self._credit_px < self.pixels[t]:
                    return
                self._credit_px -= float(self.pixels[t])
            picked.append(t)
            spent += int(self.pixels[t])

        for t in oldest[self.age[oldest] >= self.max_wait].tolist():
            take(t)
        for t in oldest[changed[oldest]].tolist():
            take(t, credit=self.trickle)
        if not self.trickle:
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
                 stream: bool = True, small_threads: int | None = None):
        self.score_threshold = check_score("score_threshold", score_threshold)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"{model_path}: model file not found")
        plan_scan(480, 640, min_face_px, tile_px)  # validates the geometry arguments
        self.model_path = str(model_path)
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
        # Unlike one 128x128 pass, a tiled frame is much network work, and XNNPACK splits it well
        # over cores: two interpreter threads beat one on tiled 1080p frames (`fer-edge bench`).
        self._num_threads = num_threads if num_threads is not None else min(2, os.cpu_count() or 1)
        self._logit_threshold = logit(min(CANDIDATE_SCORE, self.score_threshold))
        # Fails now, not on the first frame, when the model is the wrong one.
        self._nets = WindowNets(self.model_path, self._num_threads, self.iou_threshold, small_threads)
        self.second_look = SecondLook(self._nets)
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
        self.windows_last_frame: tuple[str, ...] = ()  # kinds of the windows the last detect() ran
        self.tiles_last_frame: tuple[int, ...] = ()  # which of plan()'s tiles the last detect() ran
        self.carried_last_frame = 0  # remembered faces the last detect() carried without their window

    def __enter__(self) -> "TiledDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._nets.close()
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

    def _windows(self, levels: FrameLevels) -> tuple[list[Window], np.ndarray | None]:
        """The coarse window and the level windows this frame runs, and its thumbnail (None on a
        full scan; the regions of interest are chosen once the coarse pass has run, `_rois`)."""
        h, w = levels.shape[:2]
        if self._shape != (h, w):
            self._shape = (h, w)
            self._coarse, self._tiles = self.plan(h, w)
            self._schedule = _TileSchedule(self._tiles, h, w, self.budget_px) if self._tiles else None
            self._roi_seen = np.zeros_like(self._schedule.seen[0]) if self._tiles else None
            self.reset()
        full = self._full_next or not self.stream
        self._full_next = False
        self._carry = np.zeros(len(self._memory), bool)
        if not self._tiles:
            self.tiles_last_frame = ()
            return [self._coarse], None
        if full:
            if self.stream:
                thumb = self._schedule.thumbnail(levels)
                self._schedule.restart(thumb)
                self._roi_seen[:] = thumb
            self.tiles_last_frame = tuple(range(len(self._tiles)))
            return [self._coarse, *self._tiles], None
        thumb = self._schedule.thumbnail(levels)
        self.tiles_last_frame = self._schedule.next(thumb, self._memory)
        return [self._coarse, *(self._tiles[t] for t in self.tiles_last_frame)], thumb

    def _rois(self, thumb: np.ndarray, coarse: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[Window]:
        """Region-of-interest windows of the remembered faces that the coarse pass did not find
        again; sure, still ones are carried instead (self._carry)."""
        coarse_scale = self._coarse.scale
        seen = np.zeros(len(self._memory), bool)
        found = coarse[2] >= self.score_threshold
        if found.any() and len(self._memory):
            _, mem, _ = match_boxes(coarse[0][found], self._memory, TRACK_IOU)
            seen[mem] = True
        sure = carriable(self._memory, self._memory_scores)
        windows = []
        for k, box in enumerate(self._memory):
            roi = roi_window(box)
            if seen[k] or roi.scale <= coarse_scale * 1.5:  # the coarse pass sees it (at >= 48 px)
                continue
            area = face_thumb_area(box, self._schedule.scale)
            if (self._missed[k] == 0 and self._carried[k] < self.carry_frames and sure[k]
                    and still(thumb[area], self._roi_seen[area])):
                self._carry[k] = True
            else:
                windows.append(roi)
                self._roi_seen[area] = thumb[area]
        return windows

    def _open_tiles(self, levels: FrameLevels, coarse: tuple[np.ndarray, np.ndarray, np.ndarray]
                    ) -> tuple[list[Window], np.ndarray]:
        """A full scan's level windows that faces of the coarse pass leave open (COVERED_SKIP), and
        the boxes (k, 4) of the unsure ones among those faces that the second look confirmed (the
        final decision keeps them as known). Skipped windows run first on the next streamed frame."""
        height, width = levels.shape[:2]
        boxes, keypoints, scores = coarse
        sure_score = max(CONFIDENT_SCORE, self.score_threshold)
        cell = THUMB_DIV  # coverage is counted on a grid of cell x cell frame px
        areas = []  # (y0, y1, x0, x1) grid cells per tile
        for t in self._tiles:
            x0, y0 = max(0.0, t.x) / cell, max(0.0, t.y) / cell
            x1, y1 = min(width, t.x + t.width / t.scale) / cell, min(height, t.y + t.height / t.scale) / cell
            areas.append((int(y0), max(int(y0) + 1, int(round(y1))), int(x0), max(int(x0) + 1, int(round(x1)))))
        grid = (math.ceil(height / cell), math.ceil(width / cell))

        def covers(xyxy: np.ndarray) -> np.ndarray:
            """(n_tiles,) share of each tile's cells that the boxes cover."""
            covered = np.zeros(grid, bool)
            for x1, y1, x2, y2 in np.clip(xyxy / cell, 0, None):
                covered[int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))] = True
            return np.array([covered[y0:y1, x0:x1].mean() for y0, y1, x0, x1 in areas])

        # An unsure face that would fill a window alone is worth its second look now: confirmed, it
        # saves the window (a portrait the coarse pass scores under sure_score).
        unsure = np.flatnonzero((scores >= self.score_threshold) & (scores < sure_score))
        unsure = [i for i in unsure if (covers(boxes[i:i + 1]) >= COVERED_SKIP).any()]
        confirmed = np.zeros(len(scores), bool)
        if unsure:
            confirmed[unsure] = accept(levels, boxes[unsure], keypoints[unsure], scores[unsure],
                                       np.zeros((0, 4), np.float32), keep_score=self.score_threshold,
                                       sure_score=sure_score, second_look=self.second_look)
        faces = (scores >= sure_score) | confirmed
        if not faces.any():
            return list(self._tiles), boxes[confirmed]
        open_ = np.flatnonzero(covers(boxes[faces]) < COVERED_SKIP).tolist()
        if len(open_) < len(self._tiles):
            self.tiles_last_frame = tuple(open_)
            if self.stream:
                skipped = np.setdiff1d(np.arange(len(self._tiles)), open_)
                self._schedule.age[skipped] = self._schedule.max_wait
        return [self._tiles[k] for k in open_], boxes[confirmed]

    def _run(self, levels: FrameLevels, win: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._nets.run(levels, win, self._logit_threshold)

    def detect(self, image_bgr: np.ndarray | FrameLevels) -> Faces:
        """Faces in one (H, W, 3) uint8 BGR frame (or its FrameLevels), in frame pixels."""
        if self._closed:
            raise RuntimeError("detector is closed")
        levels = FrameLevels.of(image_bgr)  # the frame's halvings, shared by its windows
        h, w = check_image(levels.image)
        windows, thumb = self._windows(levels)
        parts = [self._run(levels, windows[0])]  # the coarse pass first: it decides what a full scan skips
        confirmed = np.zeros((0, 4), np.float32)
        if thumb is None and len(windows) > 1:
            tiles, confirmed = self._open_tiles(levels, parts[0])
            windows = [windows[0], *tiles]
        parts += [self._run(levels, win) for win in windows[1:]]
        if thumb is not None:
            rois = self._rois(thumb, parts[0])
            parts += [self._run(levels, win) for win in rois]
            windows += rois
        self.windows_last_frame = tuple(win.kind for win in windows)
        self.carried_last_frame = int(self._carry.sum())
        if self._carry.any():  # still faces keep the detection their window last gave
            parts.append((self._memory[self._carry], self._memory_kps[self._carry], self._memory_scores[self._carry]))
        boxes = np.concatenate([p[0] for p in parts])
        keypoints = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores, self.iou_threshold)
        known = np.concatenate([self._memory if self.stream else np.zeros((0, 4), np.float32), confirmed])
        keep = accept(levels, boxes, keypoints, scores, known, keep_score=self.score_threshold,
                      sure_score=max(CONFIDENT_SCORE, self.score_threshold), second_look=self.second_look)
        boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
        faces, visible = frame_faces(boxes, keypoints, scores, h, w)
        if self.stream:
            self._remember(boxes[visible], keypoints[visible], scores[visible])
        return faces

    def _remember(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> None:
        """Faces of this frame continue or start remembered faces; unseen ones age out."""
        det, mem, _ = match_boxes(boxes, self._memory, TRACK_IOU)
        missed = self._missed + 1
        missed[mem] = 0
        carried = self._carried.copy()
        carried[mem] = np.where(self._carry[mem], carried[mem] + 1, 0)
        memory, kps, sc = self._memory.copy(), self._memory_kps.copy(), self._memory_scores.copy()
        memory[mem], kps[mem], sc[mem] = boxes[det], keypoints[det], scores[det]
        unmatched = np.ones(len(boxes), bool)
        unmatched[det] = False
        new = np.flatnonzero(unmatched)  # np.setdiff1d(arange, det) without its sort
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
