"""The JSON Lines record: one object per processed frame, written and read here only.

`frame_record(result)` builds it (the CLI's JSONL, the web API, MQTT and the benchmarks all
use it), `record_line(record)` is its line, `parse_record(line)` reads one back:

    {"v": 1, "frame": int, "t": float,
     "faces": [{"id": int, "box": [x1, y1, x2, y2], "score": float, "state": "face" | "uncertain",
                "emotion": str, "confidence": float, "held": bool,
                "probs": {label: float}, "probs_raw": {label: float}}],
     "latency_ms": {"detect": float, "classify": float, "total": float}}

plus "source": path in image/folder mode. "v" is the record's schema version, RECORD_VERSION;
records written before it existed have none and are read as version 1. A reader refuses a
newer version than its own, which would need a newer fer-edge. Boxes are integer pixels of the
source frame; "classify" is crop + inference (the preprocess and classify stages). Per face:

- "score": the detector's confidence in the box;
- "probs": the smoothed probabilities (an EMA over the face's track), which the label comes from;
  "probs_raw": the classifier's output for this frame's face (on a frame the detector carries,
  one that stands still, the frame before's: edge.pipeline). With smoothing off the two are equal;
- "emotion" and "confidence": the label shown and its value in "probs". It is the largest of
  "probs", except while label hysteresis holds the previous label for a few frames: then "held"
  is true;
- "state": "uncertain" when the face is turned too far (a profile, from the detector's
  keypoints) for the label to be trusted; the overlay draws such faces in grey with a "?".

Reading is lenient where older records are: "id" (-1), "score" (NaN), "state" ("face"),
"confidence" (probs[emotion]), "held" (false), "probs_raw" (none) and "latency_ms" (none) may be
missing. What is there must have its type: a number where a number belongs, "emotion" one of
the labels of "probs".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from edge.types import FrameResult

RECORD_VERSION = 1


def frame_record(result: FrameResult, source: str | None = None) -> dict:
    """The JSON-ready dict for one processed frame (see the module docstring)."""
    faces = result.faces
    idx = result.label_index
    labels = result.labels
    out_faces = []
    raw, unsure = result.probs_raw, result.is_uncertain
    for i in range(len(faces)):
        p = result.probs[i]
        li = int(idx[i])
        out_faces.append({
            "id": int(result.track_ids[i]) if len(result.track_ids) > i else -1,
            "box": [int(v) for v in faces.xyxy[i]],
            "score": round(float(faces.score[i]), 4),
            "state": "uncertain" if unsure[i] else "face",
            "emotion": labels[li],
            "confidence": round(float(p[li]), 4),
            "held": bool(p[li] < p.max()),
            "probs": {labels[k]: round(float(p[k]), 4) for k in range(len(labels))},
            "probs_raw": {labels[k]: round(float(raw[i, k]), 4) for k in range(len(labels))},
        })
    t = result.timings
    record = {
        "v": RECORD_VERSION,
        "frame": int(result.frame.index),
        "t": round(float(result.frame.t), 4),
        "faces": out_faces,
        "latency_ms": {
            "detect": round(t.detect_ms, 3),
            "classify": round(t.preprocess_ms + t.classify_ms, 3),
            "total": round(t.total_ms, 3),
        },
    }
    src = source if source is not None else result.frame.source
    if src:
        record["source"] = src
    return record


def record_line(record: dict) -> str:
    """The record as one compact JSON line, newline included."""
    return json.dumps(record, separators=(",", ":")) + "\n"


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """One face of a parsed record; `box` and `probs` in the record's own order."""

    id: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the source frame
    score: float  # NaN when the record has none
    state: str
    emotion: str
    confidence: float
    held: bool
    probs: dict[str, float]
    probs_raw: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed line: what `frame_record` wrote."""

    v: int
    frame: int
    t: float
    faces: tuple[FaceRecord, ...]
    source: str = ""
    latency_ms: dict[str, float] | None = None


_NUMBER_TYPES = frozenset({int, float})  # bool is an int subclass, and not a number here


def _numbers(values: list, what: str) -> list:
    """values when every item is an int or float, else ValueError naming `what`."""
    if not _NUMBER_TYPES.issuperset(map(type, values)):
        raise ValueError(f"{what} holds a value that is not a number")
    return values


def _number(value, what: str) -> float:
    if type(value) not in _NUMBER_TYPES:
        raise ValueError(f"{what} is not a number")
    return float(value)


def _probabilities(value, what: str) -> dict[str, float]:
    if type(value) is not dict or not value:
        raise ValueError(f"{what} is not a label -> probability object")
    _numbers(list(value.values()), what)
    return value


def _face(face, where: str) -> FaceRecord:
    if type(face) is not dict:
        raise ValueError(f"{where} is not an object")
    try:
        probs, emotion, box = face["probs"], face["emotion"], face["box"]
    except KeyError as exc:
        raise ValueError(f"{where} has no {exc.args[0]!r}") from None
    probs = _probabilities(probs, f"{where}: 'probs'")
    if type(emotion) is not str or emotion not in probs:
        raise ValueError(f"{where}: emotion {emotion!r} is not one of the labels")
    if type(box) is not list or len(box) != 4:
        raise ValueError(f"{where}: 'box' is not [x1, y1, x2, y2]")
    _numbers(box, f"{where}: 'box'")
    tid = face.get("id", -1)
    if type(tid) is not int:
        raise ValueError(f"{where}: 'id' is not an integer")
    score = face.get("score")
    state = face.get("state", "face")
    if state not in ("face", "uncertain"):
        raise ValueError(f"{where}: 'state' {state!r} is neither 'face' nor 'uncertain'")
    held = face.get("held", False)
    if type(held) is not bool:
        raise ValueError(f"{where}: 'held' is not true or false")
    raw = face.get("probs_raw")
    return FaceRecord(
        id=tid, box=tuple(box), score=math.nan if score is None else _number(score, f"{where}: 'score'"),
        state=state, emotion=emotion,
        confidence=_number(face.get("confidence", probs[emotion]), f"{where}: 'confidence'"), held=held,
        probs=probs, probs_raw=None if raw is None else _probabilities(raw, f"{where}: 'probs_raw'"))


def parse_record(line: str | bytes | dict) -> Record:
    """One record from its JSON line (or the decoded object); ValueError says what is wrong."""
    if isinstance(line, dict):
        rec = line
    else:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
        if type(rec) is not dict:
            raise ValueError("not a JSON object")
    version = rec.get("v", 1)
    if type(version) is not int or version < 1:
        raise ValueError(f"'v' {version!r} is not a record version")
    if version > RECORD_VERSION:
        raise ValueError(f"record version {version} is newer than this fer-edge reads ({RECORD_VERSION}): "
                         "update fer-edge to read it")
    for key in ("frame", "t", "faces"):
        if key not in rec:
            raise ValueError(f"no {key!r} field (is this the JSONL of `fer-edge run`?)")
    frame = rec["frame"]
    if type(frame) is not int:
        raise ValueError("'frame' is not an integer")
    t = _number(rec["t"], "'t'")
    faces = rec["faces"]
    if type(faces) is not list:
        raise ValueError("'faces' is not a list")
    latency = rec.get("latency_ms")
    if latency is not None:
        if type(latency) is not dict:
            raise ValueError("'latency_ms' is not a stage -> milliseconds object")
        _numbers(list(latency.values()), "'latency_ms'")
    src = rec.get("source", "")
    return Record(v=version, frame=frame, t=t, faces=tuple(_face(f, f"face {j}") for j, f in enumerate(faces)),
                  source=src if type(src) is str else str(src), latency_ms=latency)
