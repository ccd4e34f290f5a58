"""FER-2013 loaders on tiny CSV and folder trees built from the real data, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.labels import LABELS
from train.data import DataError, load_fer2013

PREFIX = {"train": "Training", "public": "PublicTest", "private": "PrivateTest"}


def _pick(fer_data, per_split=(14, 7, 7)):
    """A few real faces per split, every class present."""
    out = {}
    for split, n in zip(("train", "public", "private"), per_split):
        s = fer_data.split(split)
        idx = [np.flatnonzero(s.labels == c)[k] for k in range(n // 7) for c in range(7)]
        out[split] = s.subset(np.array(idx))
    return out


def write_csv(path: Path, picks, extra_rows=()):
    usage = {"train": "Training", "public": "PublicTest", "private": "PrivateTest"}
    lines = ["emotion,pixels,Usage"]
    for split, s in picks.items():
        for img, lab in zip(s.images, s.labels):
            lines.append(f"{lab},{' '.join(map(str, img.ravel()))},{usage[split]}")
    lines += list(extra_rows)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tree(root: Path, picks, prefixes=True, ext=".png"):
    for split, s in picks.items():
        top = "train" if split == "train" else "test"
        for i, (img, lab) in enumerate(zip(s.images, s.labels)):
            d = root / top / LABELS[lab]
            d.mkdir(parents=True, exist_ok=True)
            name = f"{PREFIX[split]}_{i}{ext}" if prefixes else f"{split}{i:03d}{ext}"
            # PNG keeps pixels exact, so the folder and CSV loaders can be compared bit for bit.
            cv2.imwrite(str(d / name), img)
    return root


@pytest.fixture(scope="module")
def picks(fer_data):
    return _pick(fer_data)


@pytest.mark.parametrize("layout", ["csv", "folder"])
def test_loaders_agree_with_source(tmp_path, picks, layout):
    src = write_csv(tmp_path / "fer2013.csv", picks) if layout == "csv" else write_tree(tmp_path / "fer", picks)
    data = load_fer2013(src, cache_dir=tmp_path / "cache")
    assert data.layout == layout
    for split, s in picks.items():
        got = data.split(split)
        assert got.images.dtype == np.uint8 and got.images.shape[1:] == (48, 48)
        # Folders are read class by class, so compare as multisets per label.
        for c in range(7):
            a = np.sort(got.images[got.labels == c].reshape(-1, 2304), axis=0)
            b = np.sort(s.images[s.labels == c].reshape(-1, 2304), axis=0)
            np.testing.assert_array_equal(a, b)


def test_folder_csv_in_dir_is_read_as_csv(tmp_path, picks):
    write_csv(tmp_path / "fer2013.csv", picks)
    assert load_fer2013(tmp_path, use_cache=False).layout == "csv"


def test_real_folder_layout_counts(fer_data):
    assert (len(fer_data.train), len(fer_data.public), len(fer_data.private)) == (28709, 3589, 3589)
    assert fer_data.train.class_counts()[LABELS.index("happy")] == 7215
    assert "prefix" in fer_data.split_note


def test_unprefixed_test_folder_gets_deterministic_stratified_split(tmp_path, picks):
    root = write_tree(tmp_path / "fer", {"train": picks["train"]})
    test_split = picks["public"].subset(np.arange(len(picks["public"])))
    merged = {"public": test_split, "private": picks["private"]}
    for split, s in merged.items():
        for i, (img, lab) in enumerate(zip(s.images, s.labels)):
            d = root / "test" / LABELS[lab]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"img_{split}_{i}.png"), img)
    a = load_fer2013(root, use_cache=False)
    b = load_fer2013(root, use_cache=False)
    assert "without PublicTest_/PrivateTest_ prefixes" in a.split_note
    np.testing.assert_array_equal(a.public.images, b.public.images)
    # Stratified: each class with 2 test images puts one in each half.
    assert a.public.class_counts() == a.private.class_counts() == [1] * 7


def test_cache_is_used_and_invalidated_when_source_changes(tmp_path, picks):
    csv_path = write_csv(tmp_path / "fer2013.csv", picks)
    cache = tmp_path / "cache"
    first = load_fer2013(csv_path, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    assert len(load_fer2013(csv_path, cache_dir=cache).train) == len(first.train)
    # Change the source: one more training row, with a new mtime.
    img = " ".join(["7"] * 2304)
    with open(csv_path, "a") as f:
        f.write(f"3,{img},Training\n")
    st = csv_path.stat()
    os.utime(csv_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = load_fer2013(csv_path, cache_dir=cache)
    assert len(changed.train) == len(first.train) + 1
    assert len(list(cache.glob("*.npz"))) == 2
    assert not list(cache.glob("*.tmp"))


ROW = " ".join(["1"] * 2304)


@pytest.mark.parametrize(
    "row, message",
    [
        (f"3,{ROW}", "expected 3 fields"),
        (f"x,{ROW},Training", "is not an integer"),
        (f"9,{ROW},Training", "outside 0-6"),
        (f"3,{ROW},Validation", "Usage"),
        ("3,1 2 3,Training", "expected 2304 pixels"),
        (f"3,{ROW[:-1]}a,Training", "space-separated integers"),
        (f"3,{ROW[:-1]}300,Training", "0-255"),
    ],
)
def test_malformed_csv_row_names_its_line(tmp_path, picks, row, message):
    path = write_csv(tmp_path / "fer2013.csv", picks, extra_rows=[row])
    n_rows = sum(len(s) for s in picks.values())
    with pytest.raises(DataError, match=message) as err:
        load_fer2013(path, cache_dir=tmp_path / "cache")
    assert f"fer2013.csv:{n_rows + 2}:" in str(err.value)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_bad_csv_header(tmp_path):
    p = tmp_path / "fer2013.csv"
    p.write_text("a,b,c\n")
    with pytest.raises(DataError, match=r"fer2013.csv:1: expected the header"):
        load_fer2013(p, use_cache=False)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file or folder") as err:
        load_fer2013(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)


@pytest.mark.parametrize("make", ["text_file", "empty_dir", "only_train"])
def test_unknown_layout(tmp_path, make):
    if make == "text_file":
        target = tmp_path / "data.txt"
        target.write_text("hello")
    else:
        target = tmp_path / "d"
        target.mkdir()
        if make == "only_train":
            (target / "train").mkdir()
    with pytest.raises(DataError, match="unknown layout"):
        load_fer2013(target, use_cache=False)


def test_unknown_class_folder(tmp_path, picks):
    root = write_tree(tmp_path / "fer", picks)
    (root / "train" / "contempt").mkdir()
    with pytest.raises(DataError, match="unknown class folder 'contempt'") as err:
        load_fer2013(root, use_cache=False)
    assert str(root / "train" / "contempt") in str(err.value)


def test_wrong_size_image_names_the_file(tmp_path, picks):
    root = write_tree(tmp_path / "fer", picks)
    bad = root / "train" / "happy" / "Training_big.png"
    cv2.imwrite(str(bad), np.zeros((64, 64), np.uint8))
    with pytest.raises(DataError, match="64x64, expected 48x48") as err:
        load_fer2013(root, cache_dir=tmp_path / "cache")
    assert str(bad) in str(err.value)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_undecodable_file_is_skipped_counted_and_reported(tmp_path, picks):
    root = write_tree(tmp_path / "fer", picks)
    bad = root / "train" / "sad" / "Training_broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    data = load_fer2013(root, use_cache=False)
    assert data.skipped == (str(bad),)
    assert len(data.train) == len(picks["train"])
