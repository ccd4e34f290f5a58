"""edge/record.py: the JSONL record written from real pipeline results and read back, old and bad lines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge import Pipeline
from edge.capture.readers import read_video_frames
from edge.labels import LABELS
from edge.outputs.sinks import JsonlSink
from edge.record import RECORD_VERSION, Record, frame_record, parse_record, record_line
from edge.report.read import read_run
from edge.types import FrameResult
from edge_runtime_helpers import known_result, scene_video


FACE_KEYS = {"id", "box", "score", "state", "emotion", "confidence", "held", "probs", "probs_raw"}


@pytest.mark.parametrize("n, source", [(0, ""), (1, ""), (3, ""), (2, "photos/a.jpg")])
def test_frame_record_has_exactly_the_documented_schema(n, source):
    rec = frame_record(known_result(n, source))
    expected = {"v", "frame", "t", "faces", "latency_ms"} | ({"source"} if source else set())
    assert set(rec) == expected
    assert rec["v"] == RECORD_VERSION and rec["frame"] == 7 and isinstance(rec["frame"], int) and rec["t"] == 0.5
    assert set(rec["latency_ms"]) == {"detect", "classify", "total"}
    assert rec["latency_ms"]["classify"] == pytest.approx(2.0)  # crop + inference
    assert len(rec["faces"]) == n
    for i, f in enumerate(rec["faces"]):
        assert set(f) == FACE_KEYS
        assert f["id"] == i + 1
        assert all(type(v) is int for v in f["box"]) and len(f["box"]) == 4
        assert list(f["probs"]) == list(LABELS)
        assert f["emotion"] == max(f["probs"], key=f["probs"].get) and f["held"] is False
        assert f["confidence"] == f["probs"][f["emotion"]]
        assert f["probs_raw"] == f["probs"] and f["state"] == "face"  # no smoothing, no keypoints given
    if source:
        assert rec["source"] == source
    json.loads(json.dumps(rec))  # plain JSON types only


def test_frame_record_reports_the_held_label_not_the_argmax():
    result = known_result(1, label_index=[5])
    rec = frame_record(result)
    assert rec["faces"][0]["emotion"] == LABELS[5]
    assert rec["faces"][0]["confidence"] == pytest.approx(float(result.probs[0, 5]), abs=1e-4)
    assert rec["faces"][0]["held"] is (int(np.argmax(result.probs[0])) != 5)


def test_frame_record_keeps_raw_and_smoothed_probabilities_and_the_state():
    """The label is explainable from the record: the largest of the smoothed "probs" unless
    "held"; "probs_raw" is this frame's classifier output; "state" says when not to trust it."""
    from dataclasses import replace

    result = known_result(2)
    raw = np.roll(result.probs, 1, axis=1)
    rec = frame_record(replace(result, raw_probs=raw, uncertain=np.array([False, True])))
    for i, f in enumerate(rec["faces"]):
        assert list(f["probs_raw"].values()) == pytest.approx(raw[i].tolist(), abs=1e-4)
        assert f["emotion"] == max(f["probs"], key=f["probs"].get)
    assert [f["state"] for f in rec["faces"]] == ["face", "uncertain"]



# --- written and read back: real pipeline results ----------------------------------------------

# (name, frame size, faces per frame, face px, smoothing, still photos)
SCENES = {
    "1080p, one face, smoothed": ((1920, 1080), 1, (200, 260), True, False),
    "720p, three faces, smoothed": ((1280, 720), 3, (130, 180), True, False),
    "640x360, two faces, no smoothing": ((640, 360), 2, (110, 150), False, False),
    "photos, two faces each": ((1280, 720), 2, (150, 200), True, True),
}
N_FRAMES = 6


@pytest.fixture(scope="module")
def scene_results(tmp_path_factory, faces_dir, detector_dir, emotion_model):
    """Per scene: the FrameResults of the real pipeline on a real video of FER faces."""
    out = {}
    root = tmp_path_factory.mktemp("record")
    for k, (name, (size, n_faces, face_px, smooth, stills)) in enumerate(SCENES.items()):
        truth, _ = scene_video(root / f"s{k}.mp4", faces_dir, n_frames=N_FRAMES, size=size,
                               faces_per_frame=n_faces, face_px=face_px, seed=k)
        images = read_video_frames(root / truth.video)
        with Pipeline.from_defaults(emotion_model=str(emotion_model), smooth=smooth) as pipe:
            results = []
            for i, image in enumerate(images):
                if stills:
                    pipe.reset()
                results.append(pipe.process(image, index=i, t=i / 15.0,
                                            source=f"photos/p{i}.jpg" if stills else ""))
        blank = np.full((size[1], size[0], 3), 90, np.uint8)  # a frame with nobody in it
        with Pipeline.from_defaults(emotion_model=str(emotion_model)) as pipe:
            results.append(pipe.process(blank, index=len(results), t=len(results) / 15.0))
        out[name] = results
    return out


def assert_record_matches(rec: Record, result: FrameResult):
    assert rec.v == RECORD_VERSION
    assert rec.frame == result.frame.index and rec.t == pytest.approx(result.frame.t, abs=1e-4)
    assert rec.source == result.frame.source
    assert len(rec.faces) == len(result.faces)
    t = result.timings
    assert rec.latency_ms == pytest.approx({"detect": t.detect_ms, "classify": t.preprocess_ms + t.classify_ms,
                                            "total": t.total_ms}, abs=1e-3)
    for i, face in enumerate(rec.faces):
        assert face.id == int(result.track_ids[i])
        assert face.box == tuple(int(v) for v in result.faces.xyxy[i])
        assert face.score == pytest.approx(float(result.faces.score[i]), abs=1e-4)
        assert face.emotion == result.labels[int(result.label_index[i])]
        assert face.state == ("uncertain" if result.is_uncertain[i] else "face")
        assert list(face.probs) == list(result.labels)
        assert list(face.probs.values()) == pytest.approx(result.probs[i].tolist(), abs=1e-4)
        assert list(face.probs_raw.values()) == pytest.approx(result.probs_raw[i].tolist(), abs=1e-4)
        assert face.confidence == face.probs[face.emotion]
        assert face.held is (face.confidence < max(face.probs.values()))


@pytest.mark.parametrize("scene", list(SCENES))
def test_written_records_read_back_as_the_results(scene_results, scene, tmp_path):
    results = scene_results[scene]
    assert sum(len(r.faces) for r in results) >= N_FRAMES // 2  # the pipeline found faces in the scene
    path = tmp_path / "run.jsonl"
    with JsonlSink(path) as sink:
        for result in results:
            sink.write(result)
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == len(results)
    for line, result in zip(lines, results):
        assert line == record_line(frame_record(result))
        assert_record_matches(parse_record(line), result)
    log = read_run(path)  # the report reads the same file through the same parser
    assert log.n_bad == 0 and len(log.frame) == len(results)
    assert len(log.track_id) == sum(len(r.faces) for r in results)


# --- older and malformed lines ---------------------------------------------------------------

V1_WITHOUT_VERSION = {"frame": 3, "t": 0.2, "faces": [{"id": 2, "box": [1, 2, 30, 40], "emotion": "happy",
                                                        "probs": {"happy": 0.7, "sad": 0.3}}]}


@pytest.mark.parametrize("line, frame, n_faces", [
    (json.dumps(V1_WITHOUT_VERSION), 3, 1),
    (json.dumps({**V1_WITHOUT_VERSION, "v": 1}), 3, 1),
    (json.dumps({"frame": 0, "t": 0, "faces": []}), 0, 0),
])
def test_records_without_a_version_or_later_fields_read_as_version_1(line, frame, n_faces):
    rec = parse_record(line)
    assert (rec.v, rec.frame, len(rec.faces)) == (1, frame, n_faces)
    if rec.faces:
        face = rec.faces[0]
        assert face.state == "face" and face.held is False and face.probs_raw is None
        assert face.confidence == 0.7 and math.isnan(face.score)
        assert rec.latency_ms is None


def _with(**changes) -> str:
    rec = json.loads(json.dumps(V1_WITHOUT_VERSION))
    face = changes.pop("face", {})
    rec["faces"][0].update(face)
    rec.update(changes)
    return json.dumps(rec)


@pytest.mark.parametrize("line, reason", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (_with(v=RECORD_VERSION + 1), "newer than this fer-edge reads"),
    (_with(v="1"), "is not a record version"),
    (json.dumps({"t": 0, "faces": []}), "no 'frame' field"),
    (_with(frame=1.5), "'frame' is not an integer"),
    (_with(t="0"), "'t' is not a number"),
    (_with(faces={}), "'faces' is not a list"),
    (_with(face={"emotion": "angry"}), "emotion 'angry' is not one of the labels"),
    (_with(face={"box": [1, 2, 3]}), "'box' is not [x1, y1, x2, y2]"),
    (_with(face={"box": [1, 2, 3, True]}), "'box' holds a value that is not a number"),
    (_with(face={"probs": {"happy": "high"}, "emotion": "happy"}), "'probs' holds a value that is not a number"),
    (_with(face={"id": "2"}), "'id' is not an integer"),
    (_with(face={"state": "face?"}), "'state'"),
    (_with(face={"held": 1}), "'held' is not true or false"),
    (_with(latency_ms=[1.0]), "'latency_ms' is not"),
])
def test_a_malformed_line_says_what_is_wrong(line, reason):
    with pytest.raises(ValueError) as exc:
        parse_record(line)
    assert reason in str(exc.value)


