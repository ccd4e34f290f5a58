"""edge.batch.inputs: arguments -> files, videos and images told apart by their bytes."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from edge.batch.inputs import InputError, expand, sniff, sniff_file

IMAGE_EXTS = (".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm", ".pgm")


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (480, 640, 3), np.uint8)  # a 640x480 BGR frame


def _write_image(path, seed: int = 0):
    image = _photo(seed)
    if path.suffix == ".pgm":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ok, data = cv2.imencode(path.suffix, image)
    assert ok, path.suffix
    path.write_bytes(data.tobytes())  # imencode: the name below may carry no suffix at all
    return path


def _write_video(path, fourcc: str, n: int = 5):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 15.0, (640, 480))
    assert writer.isOpened(), fourcc
    for i in range(n):
        writer.write(_photo(i))
    writer.release()
    return path


@pytest.mark.parametrize("ext", IMAGE_EXTS)
def test_images_are_told_by_their_bytes_whatever_their_name(tmp_path, ext):
    named = _write_image(tmp_path / f"photo{ext}")
    renamed = tmp_path / "photo_without_suffix.dat"
    renamed.write_bytes(named.read_bytes())
    assert sniff_file(named) == "image"
    assert sniff_file(renamed) == "image"


@pytest.mark.parametrize("ext, fourcc", [(".mp4", "mp4v"), (".avi", "MJPG"), (".mkv", "XVID")])
def test_videos_are_told_by_their_bytes_whatever_their_name(tmp_path, ext, fourcc):
    video = _write_video(tmp_path / f"clip{ext}", fourcc)
    disguised = tmp_path / "clip.jpg"
    disguised.write_bytes(video.read_bytes())
    assert sniff_file(video) == "video"
    assert sniff_file(disguised) == "video"


@pytest.mark.parametrize("head, kind", [
    (b"hello world\n" * 20, "unknown"),
    (b"", "unknown"),
    (b"G" + b"a" * 300, "unknown"),  # a text starting like a transport stream's sync byte
    (bytes([0x47, 0x40, 0, 0x10]) + bytes(184) + bytes([0x47, 0x40, 0, 0x11]), "video"),
    (b"\x00\x00\x00\x1cftypheic" + bytes(20), "image"),  # HEIF still
    (b"\x00\x00\x00\x1cftypisom" + bytes(20), "video"),
    (b"GIF89a" + bytes(20), "video"),
])
def test_signatures(head, kind):
    assert sniff(head) == kind


def test_missing_and_unreadable_files(tmp_path):
    assert sniff_file(tmp_path / "nothing.mp4") == "missing"


@pytest.fixture
def tree(tmp_path):
    """corpus/a.jpg, corpus/sub/deeper/b.mp4, corpus/sub/notes.txt, corpus/.hidden/c.jpg, corpus/.d.jpg"""
    root = tmp_path / "corpus"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    _write_image(root / "a.jpg")
    _write_video(root / "sub" / "deeper" / "b.mp4", "mp4v")
    (root / "sub" / "notes.txt").write_text("not a picture\n")
    _write_image(root / ".hidden" / "c.jpg")
    _write_image(root / ".d.jpg")
    return root


def test_a_folder_is_walked_recursively_keeping_videos_and_images(tree):
    found = expand([str(tree)])
    assert [(os.path.relpath(f.path, tree), f.kind) for f in found] == [
        ("a.jpg", "image"), (os.path.join("sub", "deeper", "b.mp4"), "video")]


def test_a_file_named_on_its_own_is_kept_even_when_it_is_neither(tree):
    found = expand([str(tree / "sub" / "notes.txt")])
    assert [(f.path, f.kind) for f in found] == [(str(tree / "sub" / "notes.txt"), "unknown")]


def test_globs_lists_and_duplicates(tree, tmp_path):
    listing = tmp_path / "lists" / "inputs.txt"
    listing.parent.mkdir()
    listing.write_text("# a comment\n\n../corpus/a.jpg\n" + str(tree / "sub") + "\n../corpus/gone.mp4\n")
    found = expand([str(tree / "**" / "*.mp4"), f"@{listing}", str(tree / "a.jpg")])
    rel = [(os.path.relpath(os.path.realpath(f.path), tree), f.kind) for f in found]
    # b.mp4 from the glob, a.jpg from the list (relative to the list's folder), the folder walked
    # (b.mp4 again: kept once), a listed path that is gone (an error row later), a.jpg again: once.
    assert rel == [(os.path.join("sub", "deeper", "b.mp4"), "video"), ("a.jpg", "image"), ("gone.mp4", "missing")]


def test_the_output_folder_inside_an_input_folder_is_not_walked(tree):
    out = tree / "results"
    (out / "runs").mkdir(parents=True)
    _write_image(out / "runs" / "x.jpg")
    assert all("results" not in f.path for f in expand([str(tree)], skip=[out]))


@pytest.mark.parametrize("argument, message", [
    ("no/such/file.mp4", "no such file or folder"),
    ("no/such/*.mp4", "the glob matches nothing"),
    ("@no/such/list.txt", "no such list file"),
])
def test_an_argument_that_names_nothing_is_an_error_before_any_work(tmp_path, argument, message):
    with pytest.raises(InputError, match=message):
        expand([str(tmp_path / argument) if not argument.startswith("@") else f"@{tmp_path / argument[1:]}"])
