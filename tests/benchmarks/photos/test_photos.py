"""benchmarks/photos/accuracy.py: the end-to-end scorer of a labelled photo folder."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks.photos.accuracy import (LabelledPhotos, PhotosError, load_labelled_folder, run_photos, scores,
                                         write_outputs)
from edge.labels import LABEL_INDEX, LABELS
from edge.pipeline import Pipeline, PipelineConfig


@pytest.mark.parametrize("labels, pred, accuracy, macro, found", [
    ([0, 0, 3, 3], [0, 0, 3, 3], 1.0, 1.0, 1.0),
    ([0, 0, 3, 3], [0, -1, 3, 0], 0.5, 0.5, 0.75),  # a missed face counts as wrong
    ([0, 3, 3, 3], [0, 0, 0, 0], 0.25, 0.5, 1.0),  # macro recall weighs classes, not photos
    ([6, 6], [-1, -1], 0.0, 0.0, 0.0),
])
def test_scores(labels, pred, accuracy, macro, found):
    s = scores(np.array(labels), np.array(pred))
    assert s["accuracy"] == pytest.approx(accuracy)
    assert s["macro_recall"] == pytest.approx(macro)
    assert s["faces_found"] == pytest.approx(found)
    assert sum(map(sum, s["confusion"])) == len(labels)
    # Only classes present in the folder enter the macro average.
    assert set(s["recall"]) == {LABELS[c] for c in set(labels)}


def _photo(face48: np.ndarray, side: int = 360, face_px: int = 200) -> np.ndarray:
    """A colour 'photo': the FER face enlarged on a textured background, like a close-up."""
    rng = np.random.default_rng(int(face48.sum()))
    bg = cv2.GaussianBlur(rng.integers(40, 200, (side, side, 3), dtype=np.uint8), (0, 0), 6)
    face = cv2.resize(face48, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
    top = left = (side - face_px) // 2
    bg[top:top + face_px, left:left + face_px] = face[:, :, None]
    return bg


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, fer_data):
    """2 photos per class from PublicTest, one face-free photo, and a stray non-image file."""
    root = tmp_path_factory.mktemp("photos")
    pub = fer_data.public
    for c, name in enumerate(LABELS):
        (root / name).mkdir()
        for k, i in enumerate(np.flatnonzero(pub.labels == c)[:2]):
            cv2.imwrite(str(root / name / f"{name}_{k}.jpg"), _photo(pub.images[i]))
    noise = np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "happy" / "no_face.png"), noise)
    (root / "happy" / "notes.txt").write_text("not a photo")
    return root


def test_load_labelled_folder(photo_folder):
    photos = load_labelled_folder(photo_folder)
    assert len(photos) == 2 * len(LABELS) + 1
    assert photos.labels.dtype == np.int64
    assert all(LABELS[label] == p.parent.name for p, label in zip(photos.paths, photos.labels))
    # The two halves partition the photos.
    assert (photos.half(0) ^ photos.half(1)).all()


@pytest.mark.parametrize("layout, message", [
    ({}, "no images"),
    ({"bored/x.jpg": b"x"}, "unknown class folder"),
])
def test_load_labelled_folder_refuses(tmp_path, layout, message):
    for rel, data in layout.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    with pytest.raises(PhotosError, match=message):
        load_labelled_folder(tmp_path)
    with pytest.raises(PhotosError, match="not found"):
        load_labelled_folder(tmp_path / "missing")


def test_run_photos_scores_the_whole_runtime(photo_folder, detector_dir, emotion_model, tmp_path):
    cfg = PipelineConfig(emotion_model=str(emotion_model))
    report = run_photos(photo_folder, cfg, peer="off", calibrate=True, progress=False)
    photos = load_labelled_folder(photo_folder)
    # The same answers, worked out independently through the public Pipeline API.
    expected = []
    with Pipeline.from_defaults(emotion_model=str(emotion_model), smooth=False) as pipe:
        for path in photos.paths:
            r = pipe.process(cv2.imread(str(path)))
            if len(r.faces) == 0:
                expected.append(-1)
                continue
            area = np.prod(r.faces.xyxy[:, 2:] - r.faces.xyxy[:, :2], axis=1)
            expected.append(int(np.argmax(r.probs[np.argmax(area)])))
    expected = np.array(expected)
    s = report["fer_edge"]
    assert s["n"] == len(photos) == report["n"]
    assert s["accuracy"] == pytest.approx(np.mean(expected == photos.labels))
    assert s["faces_found"] == pytest.approx(np.mean(expected >= 0))
    # Every enlarged face is found, the face-free photo is not.
    no_face = [i for i, p in enumerate(photos.paths) if p.stem == "no_face"]
    assert expected[no_face[0]] == -1
    assert s["faces_found"] == pytest.approx((len(photos) - 1) / len(photos))
    cal = report["calibration"]
    assert cal["n_fit"] + cal["n_held_out"] == len(photos)
    assert len(cal["cells"]) == 2 * 5 * 5 and cal["chosen"] in [c["policy"] for c in cal["cells"]]
    paths = write_outputs(report, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["fer_edge"]["accuracy"] == s["accuracy"]
    md = paths["md"].read_text()
    assert "| fer-edge |" in md and "Crop-policy calibration" in md
    assert cv2.imread(str(paths["png"])) is not None


def test_photos_cli(photo_folder, detector_dir, emotion_model, tmp_path, capsys):
    from edge.cli import main

    rc = main(["bench", "photos", str(photo_folder), "--peer", "off", "--out", str(tmp_path / "p"),
               "--no-progress", "--model", str(emotion_model)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "faces found" in out and "| fer-edge |" in out
    assert (tmp_path / "p" / "photos.json").is_file()


def test_photos_cli_missing_folder_says_so(tmp_path, capsys):
    from edge.cli import main

    rc = main(["bench", "photos", str(tmp_path / "nope"), "--peer", "off", "--no-progress"])
    assert rc != 0
    assert "folder not found" in capsys.readouterr().err


def test_labelled_photos_half_is_stable():
    from pathlib import Path

    photos = LabelledPhotos(tuple(Path(f"x/{i}.jpg") for i in range(40)), np.zeros(40, np.int64))
    again = LabelledPhotos(tuple(reversed(photos.paths)), np.zeros(40, np.int64))
    assert photos.half(0)[::-1].tolist() == again.half(0).tolist()
    assert 5 < photos.half(0).sum() < 35
    assert LABEL_INDEX["happy"] == LABELS.index("happy")


@pytest.mark.parametrize("shape, box, want", [
    ((350, 350), (100, 100, 250, 250), [(350, 85), (350, 85), (85, 350), (85, 350)]),  # all four strips
    ((350, 350), (20, 40, 330, 350), []),  # the face fills the photo: nothing left
    ((350, 350), (0, 80, 300, 350), [(50, 350)]),  # only the strip above
])
def test_negative_crops_never_overlap_the_face(shape, box, want):
    from benchmarks.photos.accuracy import negative_crops

    image = np.zeros((*shape, 3), np.uint8)
    crops = negative_crops(image, np.array(box), margin=0.1, min_side=32)
    assert sorted(c.shape[:2] for c in crops) == sorted(want)
