"""IoU tracker with per-track smoothing: stable face ids and labels that do not flicker.

Each detection is matched greedily (highest IoU first) to a live track. A face the detector
missed for a few frames may have moved further than IoU allows, so detections left over are
then matched to tracks that missed frames when their centres are close and their sizes alike.
Unmatched detections start new tracks. A track expires once it has gone unmatched for more
than `max_missed` frames AND more than `max_age_s` seconds (when frame times are given), so a
short miss (a turned head, a hand, a detector flicker) keeps one id per person at any frame
rate. Per track the class probabilities are an exponential moving average, and the shown label
changes only when a challenger beats it by `hysteresis_margin` or stays the top class for
`hysteresis_frames` frames in a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.boxes import greedy_pairs, match_boxes


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    iou_threshold: float = 0.3  # a detection continues a track when their boxes overlap this much
    max_missed: int = 10  # frames a track survives without a detection ...
    max_age_s: float = 2.0  # ... or seconds, whichever is longer (when update() gets frame times)
    reacquire_distance: float = 0.8  # a track that missed frames takes a detection this many sides away
    smooth: bool = True  # EMA + label hysteresis; off: raw probabilities, argmax label
    ema_alpha: float = 0.4  # weight of the newest frame in the EMA
    hysteresis_margin: float = 0.15  # a challenger wins at once when it leads by this much
    hysteresis_frames: int = 3  # ... or when it stays on top this many frames in a row

    def __post_init__(self):
        if not 0.0 < self.ema_alpha <= 1.0:
            raise ValueError(f"ema_alpha must be in (0, 1], got {self.ema_alpha}")
        if self.max_missed < 0 or self.hysteresis_frames < 1 or self.max_age_s < 0 or self.reacquire_distance < 0:
            raise ValueError("max_missed, max_age_s and reacquire_distance must be >= 0 and hysteresis_frames >= 1")


@dataclass(frozen=True, slots=True)
class Tracks:
    """The tracker's answer for one frame, row i for detection i."""

    ids: np.ndarray  # (n,) int64 stable track id
    probs: np.ndarray  # (n, C) float32 smoothed (or raw) probabilities
    label_index: np.ndarray  # (n,) int64 shown label


class _Track:
    __slots__ = ("id", "box", "probs", "label", "challenger", "streak", "missed", "seen_t")

    def __init__(self, track_id: int, box: np.ndarray, probs: np.ndarray, t: float | None):
        self.id = track_id
        self.box = box  # (4,) float32 xyxy
        self.probs = probs.astype(np.float32, copy=True)  # (C,) float32 EMA
        self.label = int(np.argmax(probs))
        self.challenger = -1
        self.streak = 0
        self.missed = 0
        self.seen_t = t  # frame time of the last match (None: frame times not given)


class Tracker:
    """`tracks = tracker.update(xyxy, probs)` once per frame, in frame order."""

    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self._tracks: list[_Track] = []
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._tracks)

    def reset(self) -> None:
        self._tracks.clear()

    def update(self, xyxy: np.ndarray, probs: np.ndarray, t: float | None = None) -> Tracks:
        """xyxy: (n, 4) boxes of this frame's faces; probs: (n, C) float32 classifier output;
        t: the frame's time in seconds (enables max_age_s)."""
        cfg = self.config
        n = xyxy.shape[0]
        match = self._match(xyxy)  # (n,) index into self._tracks or -1
        matched = set(int(j) for j in match if j >= 0)
        out_probs = np.empty((n, probs.shape[1]), np.float32)
        out_label = np.empty((n,), np.int64)
        out_ids = np.empty((n,), np.int64)
        new_tracks: list[_Track] = []
        for i in range(n):
            box = xyxy[i].astype(np.float32)
            if match[i] >= 0:
                tr = self._tracks[int(match[i])]
                tr.box, tr.missed, tr.seen_t = box, 0, t
                if cfg.smooth:
                    tr.probs += cfg.ema_alpha * (probs[i] - tr.probs)
                    self._hysteresis(tr)
                else:
                    tr.probs = probs[i].astype(np.float32, copy=True)
                    tr.label = int(np.argmax(tr.probs))
            else:
                tr = _Track(self._next_id, box, probs[i], t)
                self._next_id += 1
                new_tracks.append(tr)
            out_ids[i], out_probs[i], out_label[i] = tr.id, tr.probs, tr.label
        survivors = []
        for j, tr in enumerate(self._tracks):
            if j not in matched:
                tr.missed += 1
                if tr.missed > cfg.max_missed and (
                        t is None or tr.seen_t is None or t - tr.seen_t > cfg.max_age_s):
                    continue
            survivors.append(tr)
        self._tracks = survivors + new_tracks
        return Tracks(ids=out_ids, probs=out_probs, label_index=out_label)

    def _match(self, xyxy: np.ndarray) -> np.ndarray:
        match = np.full((xyxy.shape[0],), -1, np.int64)
        if xyxy.shape[0] == 0 or not self._tracks:
            return match
        det, trk, _ = match_boxes(xyxy, np.stack([t.box for t in self._tracks]), self.config.iou_threshold)
        match[det] = trk
        used_t = np.zeros((len(self._tracks),), bool)
        used_t[trk] = True
        free = np.flatnonzero(match < 0)
        if not len(free) or self.config.reacquire_distance <= 0:
            return match
        lost = np.array([j for j, tr in enumerate(self._tracks) if tr.missed > 0 and not used_t[j]], np.int64)
        if len(lost):
            self._reacquire(xyxy, free, lost, match)
        return match

    def _reacquire(self, xyxy: np.ndarray, free: np.ndarray, lost: np.ndarray, match: np.ndarray) -> None:
        """Unmatched detections -> tracks that missed frames: nearest centres first, in units of
        the boxes' mean side, between boxes whose sides differ by less than 1.5x."""
        det = xyxy[free].astype(np.float32)
        trk = np.stack([self._tracks[j].box for j in lost])
        side_d = np.sqrt(np.maximum((det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1]), 1.0))
        side_t = np.sqrt(np.maximum((trk[:, 2] - trk[:, 0]) * (trk[:, 3] - trk[:, 1]), 1.0))
        centre_d = (det[:, :2] + det[:, 2:]) / 2
        centre_t = (trk[:, :2] + trk[:, 2:]) / 2
        dist = np.linalg.norm(centre_d[:, None, :] - centre_t[None, :, :], axis=2)
        dist /= (side_d[:, None] + side_t[None, :]) / 2
        ratio = np.maximum(side_d[:, None] / side_t[None, :], side_t[None, :] / side_d[:, None])
        dist[ratio >= 1.5] = np.inf
        a, b = greedy_pairs(-dist, -self.config.reacquire_distance)  # nearest first
        match[free[a]] = lost[b]

    def _hysteresis(self, tr: _Track) -> None:
        cfg = self.config
        top = int(np.argmax(tr.probs))
        if top == tr.label:
            tr.challenger, tr.streak = -1, 0
            return
        tr.streak = tr.streak + 1 if top == tr.challenger else 1
        tr.challenger = top
        if tr.probs[top] - tr.probs[tr.label] >= cfg.hysteresis_margin or tr.streak >= cfg.hysteresis_frames:
            tr.label, tr.challenger, tr.streak = top, -1, 0
