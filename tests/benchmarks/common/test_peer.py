"""benchmarks/common/peer.py: fer's FER(mtcnn=False) on a few real frames, when fer is installed."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.common import peer
from benchmarks.speed.pipeline import FrameReader
from benchmarks.scenes.synthetic import make_scene_image, make_scene_video

pytestmark = pytest.mark.skipif(not peer.available(),
                                reason=f"the peer `fer` is not installed ({peer.install_hint()})")


@pytest.fixture(scope="module")
def fer_peer():
    return peer.FerPeer()


@pytest.fixture(scope="module")
def private(face_crops):
    crops, labels = face_crops
    return crops[:30], labels[:30]


def test_uses_the_cascade_fer_ships(fer_peer):
    assert (fer_peer.data_dir / "haarcascade_frontalface_default.xml").is_file()
    assert fer_peer.version.startswith("25.")


def test_detect_emotions_on_a_scene(fer_peer, private):
    crops, labels = private
    image, _ = make_scene_image(crops, labels, size=(640, 480), faces_per_frame=1, face_px=(220, 260), seed=0)
    boxes = fer_peer.find_faces(image)
    out = fer_peer.detect_emotions(image, face_rectangles=boxes)
    assert len(out) == len(boxes)
    for face in out:
        assert set(face["emotions"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def test_classify_crops(fer_peer, private):
    crops, _ = private
    x = peer.FerPeer.preprocess_crops(crops[:3])
    assert x.shape == (3, 64, 64) and x.min() >= -1.0 and x.max() <= 1.0
    probs = fer_peer.classify_crops(crops[:5])
    assert probs.shape == (5, 7)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3)


def test_peer_bench_on_frames(private, tmp_path):
    crops, labels = private
    truth = make_scene_video(tmp_path / "v.mp4", crops, labels, n_frames=6, size=(320, 240), faces_per_frame=1,
                             face_px=(120, 150), seed=2)
    with FrameReader(str(tmp_path / truth.video)) as reader:
        rep = peer.run_peer_bench(reader, frames=8, warmup=1, progress=False)
    assert rep["frames"] == 8 and rep["fps"] > 0
    assert set(rep["stages"]) == {"decode", "detect", "classify"}
    assert rep["name"].startswith("fer 25.")


def test_peer_accuracy_schema(private):
    crops, labels = private
    out = peer.peer_accuracy(crops, labels, timing_faces=3)
    assert out["n"] == 30 and 0.0 <= out["accuracy"] <= 1.0 and out["ms_per_face"] > 0


def test_side_by_side_in_one_run(private, tmp_path):
    from benchmarks.speed import pipeline as bp

    crops, labels = private
    truth = make_scene_video(tmp_path / "v.mp4", crops, labels, n_frames=8, size=(320, 240), faces_per_frame=1,
                             face_px=(120, 150), seed=5)
    cfg = bp.BenchConfig(source=str(tmp_path / truth.video), frames=12, warmup=1, peer="on")
    rep = bp.run_pipeline_bench(cfg, progress=False, block=5)  # 5 + 5 + 2 frames each, alternating
    assert rep["frames"] == rep["peer"]["frames"] == 12
    assert rep["fps_ratio"] == pytest.approx(rep["fps"] / rep["peer"]["fps"])
    paths = bp.write_outputs(rep, tmp_path / "bench.json")
    md = paths["markdown"].read_text()
    assert "Peer: fer 25." in md and "fer-edge / peer frames/s" in md
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
