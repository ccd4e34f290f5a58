"""What happened to the tracked people, frame after frame: appear, change of label, leave.

    presence = PresenceEvents(max_missed=10, max_age_s=2.0)   # the tracker's own expiry rule
    for event in presence.update(result):                    # FrameResult -> 0 or more events
        send(event.to_json())

A person appears with the first frame that shows their track id, changes when the label the
tracker holds for them (smoothed, with hysteresis) changes, and leaves once their id has been
missing for more than `max_missed` processed frames AND more than `max_age_s` seconds of frame
time: the rule by which the tracker itself gives an id up, so a face the detector misses for a
moment neither leaves nor comes back as someone new. Only the people in view are remembered, so
nothing grows however long the run.

`FrameState` is the frame in two words for dashboards: how many faces, and the label most of
them show.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.types import FrameResult

APPEAR, CHANGE, LEAVE = "appear", "change", "leave"
NO_FACE = "none"  # FrameState.emotion when no face is in view


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    kind: str  # APPEAR, CHANGE or LEAVE
    track_id: int
    emotion: str  # the label now (LEAVE: the last one shown)
    previous: str | None  # CHANGE: the label before; else None
    confidence: float  # probability of `emotion` in the frame that raised the event (LEAVE: the last one)
    frame: int  # the frame that raised the event (LEAVE: the first frame after the expiry)
    t: float  # that frame's time, seconds (video position, or monotonic since start for live sources)
    box: tuple[int, int, int, int] | None  # x1, y1, x2, y2 in frame pixels; None for LEAVE
    seen_s: float = 0.0  # LEAVE: frame time from the first to the last frame that showed the person

    def to_json(self) -> dict:
        out = {"event": self.kind, "id": self.track_id, "emotion": self.emotion, "frame": self.frame,
               "t": round(self.t, 4), "confidence": round(self.confidence, 4)}
        if self.previous is not None:
            out["previous"] = self.previous
        if self.box is not None:
            out["box"] = list(self.box)
        if self.kind == LEAVE:
            out["seen_s"] = round(self.seen_s, 3)
        return out


@dataclass(slots=True)
class _Person:
    label: str
    confidence: float
    first_t: float
    last_t: float
    last_step: int  # PresenceEvents' own count of processed frames when last seen


class PresenceEvents:
    """Track ids in, appear/change/leave events out; one instance per stream."""

    def __init__(self, max_missed: int = 10, max_age_s: float = 2.0):
        if max_missed < 0 or max_age_s < 0:
            raise ValueError("max_missed and max_age_s must be >= 0")
        self.max_missed = int(max_missed)
        self.max_age_s = float(max_age_s)
        self._people: dict[int, _Person] = {}
        self._step = 0

    @property
    def in_view(self) -> int:
        """People seen and not yet left."""
        return len(self._people)

    def update(self, result: FrameResult) -> list[PresenceEvent]:
        """The events this frame raises, appear and change first (in face order), then leave."""
        self._step += 1
        frame = result.frame
        index, t = int(frame.index), float(frame.t)
        events: list[PresenceEvent] = []
        present: set[int] = set()
        ids = result.track_ids
        for i in range(min(len(result.faces), len(ids))):
            track_id = int(ids[i])
            if track_id < 0:  # tracking off: nobody to follow
                continue
            present.add(track_id)
            label = result.labels[int(result.label_index[i])]
            confidence = float(result.probs[i, int(result.label_index[i])])
            box = tuple(int(v) for v in result.faces.xyxy[i])
            person = self._people.get(track_id)
            if person is None:
                self._people[track_id] = _Person(label, confidence, t, t, self._step)
                events.append(PresenceEvent(APPEAR, track_id, label, None, confidence, index, t, box))
                continue
            if label != person.label:
                events.append(PresenceEvent(CHANGE, track_id, label, person.label, confidence, index, t, box))
                person.label = label
            person.confidence, person.last_t, person.last_step = confidence, t, self._step
        for track_id in [k for k in self._people if k not in present]:
            person = self._people[track_id]
            if self._step - person.last_step > self.max_missed and t - person.last_t > self.max_age_s:
                del self._people[track_id]
                events.append(PresenceEvent(LEAVE, track_id, person.label, None, person.confidence, index, t, None,
                                            seen_s=person.last_t - person.first_t))
        return events


@dataclass(frozen=True, slots=True)
class FrameState:
    faces: int
    emotion: str  # the label most faces show (ties: the higher summed confidence); NO_FACE without faces

    def to_json(self) -> dict:
        return {"faces": self.faces, "emotion": self.emotion}


def frame_state(result: FrameResult) -> FrameState:
    n = len(result.faces)
    if n == 0:
        return FrameState(0, NO_FACE)
    votes: dict[int, tuple[int, float]] = {}
    for i in range(n):
        k = int(result.label_index[i])
        count, mass = votes.get(k, (0, 0.0))
        votes[k] = (count + 1, mass + float(result.probs[i, k]))
    best = max(votes, key=lambda k: votes[k])
    return FrameState(n, result.labels[best])
