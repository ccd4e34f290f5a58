"""Presence events (appear, change, leave) and the frame's state, from sequences of FrameResults."""

from __future__ import annotations

import numpy as np
import pytest

from edge.outputs.events import APPEAR, CHANGE, LEAVE, NO_FACE, PresenceEvents, frame_state
from edge.labels import LABELS
from edge.types import Faces, Frame, FrameResult

IMAGE = np.zeros((1080, 1920, 3), np.uint8)  # a 1080p frame; events only read its index and time


def result(index: int, t: float, people: list[tuple[int, str]]) -> FrameResult:
    """A frame showing `people` as (track id, label), each with 0.8 on its label."""
    n = len(people)
    probs = np.full((n, len(LABELS)), 0.2 / (len(LABELS) - 1), np.float32)
    idx = np.array([LABELS.index(label) for _, label in people], np.int64)
    probs[np.arange(n), idx] = 0.8
    boxes = np.array([[100 * k, 100, 100 * k + 80, 180] for k in range(n)], np.int32).reshape(n, 4)
    faces = Faces(boxes, np.full(n, 0.9, np.float32), np.zeros((n, 6, 2), np.float32))
    return FrameResult(Frame(IMAGE, index, t), faces, np.array([i for i, _ in people], np.int64), probs,
                       tuple(LABELS), idx)


def run_script(frames: list[list[tuple[int, str]]], fps: float = 10.0, **kw) -> list[tuple]:
    presence = PresenceEvents(**kw)
    out = []
    for i, people in enumerate(frames):
        out += [(i, e.kind, e.track_id, e.emotion, e.previous) for e in presence.update(result(i, i / fps, people))]
    return out


CASES = {
    "appear then change": (
        [[], [(1, "happy")], [(1, "happy")], [(1, "sad")]],
        [(1, APPEAR, 1, "happy", None), (3, CHANGE, 1, "sad", "happy")]),
    "two people in one frame, in face order": (
        [[(4, "angry"), (2, "neutral")]],
        [(0, APPEAR, 4, "angry", None), (0, APPEAR, 2, "neutral", None)]),
    # missed for 2 frames (0.2 s): within both limits, so no leave and no new appear
    "a short miss is no leave": (
        [[(1, "happy")], [], [], [(1, "happy")]],
        [(0, APPEAR, 1, "happy", None)]),
    # leave needs more than max_missed=2 frames AND more than max_age_s=0.25 s: at 10 frames/s, frame 3 (0.3 s)
    "a leave after both limits": (
        [[(1, "fear")], [], [], [], [], []],
        [(0, APPEAR, 1, "fear", None), (3, LEAVE, 1, "fear", None)]),
    "the tracking-off id -1 raises nothing": (
        [[(-1, "happy")], [(-1, "sad")]],
        []),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_presence_events(case):
    frames, want = CASES[case]
    assert run_script(frames, max_missed=2, max_age_s=0.25) == want


@pytest.mark.parametrize("fps, leave_frame", [(10.0, 21), (100.0, 201), (1.0, 11)])
def test_leave_waits_for_frames_and_seconds_whichever_is_longer(fps, leave_frame):
    # the tracker's defaults: 10 frames and 2 s
    frames = [[(1, "happy")]] + [[]] * 250
    got = run_script(frames, fps=fps, max_missed=10, max_age_s=2.0)
    assert got[-1][:3] == (leave_frame, LEAVE, 1)


def test_leave_carries_the_time_in_view_and_json_has_every_field():
    presence = PresenceEvents(max_missed=0, max_age_s=0.0)
    presence.update(result(0, 1.0, [(7, "surprise")]))
    presence.update(result(1, 3.5, [(7, "surprise")]))
    (leave,) = presence.update(result(2, 4.0, []))
    assert leave.to_json() == {"event": "leave", "id": 7, "emotion": "surprise", "frame": 2, "t": 4.0,
                               "confidence": 0.8, "seen_s": 2.5}
    assert presence.in_view == 0


@pytest.mark.parametrize("people, want", [
    ([], (0, NO_FACE)),
    ([(1, "happy")], (1, "happy")),
    ([(1, "happy"), (2, "sad"), (3, "sad")], (3, "sad")),
])
def test_frame_state_is_the_label_most_faces_show(people, want):
    state = frame_state(result(0, 0.0, people))
    assert (state.faces, state.emotion) == want
