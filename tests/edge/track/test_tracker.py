"""IoU tracker: stable ids, expiry after N missed frames, EMA + label hysteresis."""

from __future__ import annotations

import numpy as np
import pytest

from edge.track.tracker import Tracker, TrackerConfig

C = 7


def onehot(k: int, p: float = 0.9) -> np.ndarray:
    v = np.full((C,), (1.0 - p) / (C - 1), np.float32)
    v[k] = p
    return v


def box(x: float, y: float, s: float = 100) -> list[float]:
    return [x, y, x + s, y + s]


def step(tracker: Tracker, boxes: list[list[float]], probs: list[np.ndarray] | None = None):
    xyxy = np.asarray(boxes, np.int32).reshape(-1, 4)
    p = np.stack(probs) if probs else np.tile(onehot(0), (len(xyxy), 1)).astype(np.float32)
    return tracker.update(xyxy, p)


def test_ids_are_stable_for_moving_faces_and_new_faces_get_new_ids():
    tr = Tracker(TrackerConfig())
    first = step(tr, [box(0, 0), box(300, 0)])
    assert len(set(first.ids.tolist())) == 2
    ids = dict(zip(("left", "right"), first.ids.tolist()))
    for k in range(1, 10):  # both drift 5 px per frame; the order of detections flips
        out = step(tr, [box(300 + 5 * k, 0), box(5 * k, 0)])
        assert out.ids.tolist() == [ids["right"], ids["left"]]
    out = step(tr, [box(45, 0), box(345, 0), box(600, 300)])
    assert out.ids[2] not in (ids["left"], ids["right"])
    assert out.ids[2] > max(ids.values())


@pytest.mark.parametrize("max_missed, gap, same_id", [
    (3, 3, True),  # missed exactly max_missed frames: still alive
    (3, 4, False),  # one more: expired, the face comes back as a new track
    (0, 1, False),
    (10, 5, True),
])
def test_tracks_expire_after_max_missed_frames(max_missed, gap, same_id):
    tr = Tracker(TrackerConfig(max_missed=max_missed))
    first = step(tr, [box(0, 0)]).ids[0]
    for _ in range(gap):
        step(tr, [])
    again = step(tr, [box(2, 2)]).ids[0]
    assert bool(again == first) is same_id


def test_each_track_matches_at_most_one_detection():
    tr = Tracker(TrackerConfig())
    a = step(tr, [box(0, 0)]).ids[0]
    out = step(tr, [box(0, 0), box(10, 10)])  # both overlap the one track; the better one keeps it
    assert out.ids[0] == a and out.ids[1] != a


def _label_changes(labels: list[int]) -> int:
    return sum(1 for x, y in zip(labels, labels[1:]) if x != y)


def test_smoothing_stops_flicker_between_close_labels():
    rng = np.random.default_rng(0)
    raw_tr, smooth_tr = Tracker(TrackerConfig(smooth=False)), Tracker(TrackerConfig(smooth=True))
    raw, smooth = [], []
    for _ in range(60):  # two labels neck and neck, the noisy winner flips almost every frame
        p = np.full((C,), 0.02, np.float32)
        p[3], p[6] = 0.45 + rng.normal(0, 0.05), 0.45
        p /= p.sum()
        raw.append(int(step(raw_tr, [box(0, 0)], [p]).label_index[0]))
        smooth.append(int(step(smooth_tr, [box(0, 0)], [p]).label_index[0]))
    assert _label_changes(raw) > 10
    assert _label_changes(smooth) * 4 <= _label_changes(raw)


@pytest.mark.parametrize("margin, frames, switch_by", [
    (0.15, 3, 2),  # a clear change wins on the margin after 2 frames (EMA alpha 0.4)
    # margin unreachable: the k-frame rule switches k frames after the challenger got on top
    # of the EMA (frame 2)
    (0.9, 3, 4),
    (0.9, 5, 6),
])
def test_hysteresis_switches_on_a_sustained_change(margin, frames, switch_by):
    tr = Tracker(TrackerConfig(ema_alpha=0.4, hysteresis_margin=margin, hysteresis_frames=frames))
    for _ in range(10):
        step(tr, [box(0, 0)], [onehot(3)])
    labels = [int(step(tr, [box(0, 0)], [onehot(4)]).label_index[0]) for _ in range(8)]
    first_switch = labels.index(4) + 1
    assert first_switch == switch_by
    assert all(x == 4 for x in labels[first_switch - 1:])


def test_smoothing_off_returns_raw_probabilities_and_argmax():
    tr = Tracker(TrackerConfig(smooth=False))
    p = [onehot(2), onehot(5)]
    step(tr, [box(0, 0), box(300, 0)], p)
    q = [onehot(4), onehot(1)]
    out = step(tr, [box(0, 0), box(300, 0)], q)
    np.testing.assert_array_equal(out.probs, np.stack(q))
    assert out.label_index.tolist() == [4, 1]


def test_smoothed_probabilities_are_an_ema():
    tr = Tracker(TrackerConfig(ema_alpha=0.25))
    step(tr, [box(0, 0)], [onehot(0, 1.0)])
    out = step(tr, [box(0, 0)], [onehot(1, 1.0)])
    assert out.probs[0, 0] == pytest.approx(0.75) and out.probs[0, 1] == pytest.approx(0.25)
    assert out.probs.dtype == np.float32 and out.ids.dtype == np.int64


@pytest.mark.parametrize("kwargs", [{"ema_alpha": 0.0}, {"ema_alpha": 1.5}, {"max_missed": -1},
                                    {"hysteresis_frames": 0}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        TrackerConfig(**kwargs)


def step_t(tracker: Tracker, boxes: list[list[float]], t: float):
    xyxy = np.asarray(boxes, np.int32).reshape(-1, 4)
    return tracker.update(xyxy, np.tile(onehot(0), (len(xyxy), 1)).astype(np.float32), t=t)


@pytest.mark.parametrize("fps, gap_frames, max_missed, max_age_s, same_id", [
    (30.0, 45, 10, 2.0, True),  # 1.5 s unseen at 30 fps: more than 10 frames, less than 2 s
    (30.0, 75, 10, 2.0, False),  # 2.5 s: both limits passed
    (2.0, 8, 10, 2.0, True),  # 4 s at 2 frames/s: the frame limit is the longer one
    (2.0, 11, 10, 2.0, False),
    (30.0, 45, 10, 0.0, False),  # max_age_s 0: frames only, as before
])
def test_a_short_miss_keeps_the_id_at_any_frame_rate(fps, gap_frames, max_missed, max_age_s, same_id):
    tr = Tracker(TrackerConfig(max_missed=max_missed, max_age_s=max_age_s))
    first = step_t(tr, [box(0, 0)], 0.0).ids[0]
    for k in range(1, gap_frames + 1):
        step_t(tr, [], k / fps)
    again = step_t(tr, [box(3, 3)], (gap_frames + 1) / fps).ids[0]
    assert bool(again == first) is same_id


@pytest.mark.parametrize("shift, distance, same_id", [
    (40, 0.8, True),  # moved 0.4 of its side while unseen: IoU 0.43 would match anyway
    (75, 0.8, True),  # 0.75 side: IoU 0.14, below the threshold; near enough to reacquire
    (75, 0.0, False),  # reacquiring off
    (200, 0.8, False),  # two sides away: someone else
])
def test_a_face_that_moved_while_unseen_is_reacquired(shift, distance, same_id):
    tr = Tracker(TrackerConfig(reacquire_distance=distance))
    first = step_t(tr, [box(100, 100)], 0.0).ids[0]
    for k in range(1, 6):
        step_t(tr, [], k / 30)
    again = step_t(tr, [box(100 + shift, 100)], 6 / 30).ids[0]
    assert bool(again == first) is same_id


def test_reacquiring_needs_a_similar_size_and_never_takes_a_face_from_a_seen_track():
    tr = Tracker(TrackerConfig())
    a, b = step_t(tr, [box(0, 0), box(150, 0)], 0.0).ids
    step_t(tr, [box(0, 0)], 1 / 30)  # b unseen for a frame
    # A detection near b but twice its size is someone else (closer to the camera).
    out = step_t(tr, [box(0, 0), box(150, 0, 200)], 2 / 30)
    assert out.ids[0] == a and out.ids[1] not in (a, b)
    # a is still seen and keeps its own detection even though lost b is close to it.
    tr2 = Tracker(TrackerConfig())
    a, b = step_t(tr2, [box(0, 0), box(70, 0)], 0.0).ids
    step_t(tr2, [box(0, 0)], 1 / 30)
    out = step_t(tr2, [box(5, 0), box(130, 0)], 2 / 30)
    assert out.ids.tolist() == [a, b]
