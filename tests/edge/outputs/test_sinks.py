"""Outputs: the JSONL, video and image sinks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.outputs.sinks import ImageDirSink, JsonlSink, OutputError, SavedFrames, Sink, VideoSink
from edge_runtime_helpers import known_result


def test_jsonl_sink_needs_its_folder_and_names_the_option(tmp_path):
    with pytest.raises(OutputError) as info:
        JsonlSink(tmp_path / "sub" / "out.jsonl", option="--report")
    assert str(info.value).startswith(f"--report {tmp_path / 'sub' / 'out.jsonl'}: No such file")
    assert not (tmp_path / "sub").exists()  # never created behind the user's back


def test_jsonl_sink_flushes_every_line(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path)
    for i in range(3):
        sink.write(known_result(1, index=i))
        # Read through another handle before close: a killed run keeps every written line.
        lines = path.read_text().splitlines()
        assert len(lines) == i + 1 and json.loads(lines[-1])["frame"] == i
    sink.close()


# What each container holds: what a browser plays (H.264, VP9), and MJPEG in an AVI, which no
# browser plays whatever its codec.
CONTAINER_CODECS = {"out.mp4": "h264", "out.m4v": "h264", "out.mov": "h264", "out.mkv": "h264",
                    "out.webm": "vp9", "out.avi": "mjpeg"}


@pytest.mark.parametrize("name", list(CONTAINER_CODECS))
def test_video_sink_writes_a_readable_video_in_the_container_asked_for(tmp_path, name):
    av = pytest.importorskip("av")
    path = tmp_path / name
    with VideoSink(path, fps=10) as sink:
        for i in range(5):
            sink.write_image(np.full((121, 161, 3), 40 * i, np.uint8))  # odd sizes: padded to even for 4:2:0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == CONTAINER_CODECS[name]
        assert (stream.codec_context.width, stream.codec_context.height) == (162, 122)
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == 5 and frames[0].shape == (122, 162, 3)


def test_image_dir_sink_names_after_the_source(tmp_path):
    sink = ImageDirSink(tmp_path / "out")
    img = np.zeros((10, 10, 3), np.uint8)
    a = sink.write_image(img, "x/face.png", 0)
    b = sink.write_image(img, "y/face.png", 1)  # same stem from another folder: not overwritten
    c = sink.write_image(img, "", 2)
    assert a.name == "face.jpg" and b.name == "face_000001.jpg" and c.name == "frame_000002.jpg"
    assert all(p.is_file() for p in (a, b, c))


def test_saving_sinks_share_one_annotated_frame_per_result(tmp_path):
    saved = SavedFrames(hud=False)
    first, second = known_result(2, index=1), known_result(2, index=2)
    image = saved(first)
    assert saved(first) is image and saved(second) is not image  # drawn once per result
    assert image.shape == first.frame.image.shape and not np.array_equal(image, first.frame.image)
    sinks: list[Sink] = [ImageDirSink(tmp_path / "images", annotate=saved),
                         VideoSink(tmp_path / "v.avi", fps=5, annotate=saved), JsonlSink(tmp_path / "r.jsonl")]
    for result in (first, second):
        for sink in sinks:
            sink.write(result)
    for sink in sinks:
        sink.close()
    written = cv2.imread(str(tmp_path / "images" / "frame_000002.jpg"))
    assert np.abs(written.astype(int) - saved(second)).mean() < 3  # JPEG of the annotated frame
    assert sinks[1].frames == 2 and len((tmp_path / "r.jsonl").read_text().splitlines()) == 2
    with pytest.raises(TypeError, match="annotate"):
        VideoSink(tmp_path / "w.avi").write(first)
