"""`fer-edge run`'s output paths on real file systems: a full disk (/dev/full, and a real tmpfs
that fills up mid-run), a read-only place (a read-only mount, or a chmod 555 folder for a
plain user), missing folders and folders where a file belongs. Every case gets one line that
names the option, the right exit code and no traceback; nothing is created by a failed check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.cli import main as cli_main
from edge_runtime_helpers import scene_video


@pytest.fixture(scope="module")
def video(tmp_path_factory, faces_dir):
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    truth, _ = scene_video(path, faces_dir, n_frames=60, size=(320, 240), face_px=(90, 120), seed=4)
    return path.parent / truth.video


def _mount_tmpfs(folder: Path, options: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    folder.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"this host does not let us mount a tmpfs: {res.stderr.strip()}")


@contextmanager
def small_disk(folder: Path, size: str):
    """A real file system of `size` bytes (tmpfs), unmounted afterwards."""
    _mount_tmpfs(folder, f"size={size}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@contextmanager
def read_only_folder(folder: Path):
    """A folder nobody can write in: a read-only mount as root (root ignores permission bits), else chmod 555."""
    if os.geteuid() == 0:
        _mount_tmpfs(folder, "ro,size=64k")
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=False)
    else:
        folder.mkdir()
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


def _run(capsys, *args: str) -> tuple[int, str]:
    rc = cli_main(["run", "--headless", *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full is a Linux device")
def test_jsonl_on_dev_full_stops_with_one_line_saying_where(video, detector_dir, capsys):
    rc, err = _run(capsys, "--source", str(video), "--jsonl", "/dev/full")
    assert rc == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("fer-edge run: error: --jsonl /dev/full: No space left on device"), err
    assert "stopped at frame 0" in last and "0 frame(s) written before it" in last
    assert "frames 1 " in err  # the summary still comes, with what was processed


def test_a_disk_that_fills_up_mid_run_leaves_whole_lines_and_says_where(video, tmp_path, detector_dir, capsys):
    # 8 KiB hold about 20 of this clip's 60 records: the disk fills up mid-run, mid-line.
    with small_disk(tmp_path / "disk", "8k") as disk:
        out = disk / "faces.jsonl"
        rc, err = _run(capsys, "--source", str(video), "--jsonl", str(out))
        data = out.read_bytes()
    assert rc == 1, err
    records = [json.loads(line) for line in data.decode().splitlines()]  # every line whole and valid
    assert data.endswith(b"\n") and 0 < len(records) < 60
    assert [r["frame"] for r in records] == list(range(len(records)))
    last = err.strip().splitlines()[-1]
    assert f"--jsonl {out}: No space left on device" in last
    assert f"stopped at frame {len(records)}" in last and f"keeps the {len(records)} frame(s)" in last


def test_appending_to_a_full_disk_keeps_the_earlier_lines(video, tmp_path, detector_dir, capsys):
    with small_disk(tmp_path / "disk", "8k") as disk:
        out = disk / "faces.jsonl"
        out.write_text('{"frame": 0, "t": 0.0, "faces": [], "latency_ms": {}}\n' * 10)
        rc, err = _run(capsys, "--source", str(video), "--jsonl", str(out), "--append")
        lines = out.read_text().splitlines()
    assert rc == 1, err
    assert all(json.loads(line) for line in lines) and len(lines) > 10
    assert lines[:10] == ['{"frame": 0, "t": 0.0, "faces": [], "latency_ms": {}}'] * 10


FILE_OPTIONS = {"--jsonl": "x.jsonl", "--save-video": "x.mp4"}
ALL_OPTIONS = {**FILE_OPTIONS, "--out-dir": "annotated", "--report": "report"}


@pytest.mark.parametrize("option", list(ALL_OPTIONS))
def test_a_missing_parent_folder_is_an_error_and_is_not_created(option, video, tmp_path, capsys):
    if option == "--report":
        pytest.importorskip("matplotlib")
    path = tmp_path / "nonexistent_dir" / ALL_OPTIONS[option]
    rc, err = _run(capsys, "--source", str(video), option, str(path))
    assert rc == 2, err
    assert f"error: {option} {path}: the folder {path.parent} does not exist" in err
    assert not path.parent.exists()


@pytest.mark.parametrize("option", list(FILE_OPTIONS))
def test_a_folder_where_a_file_belongs_names_the_option(option, video, tmp_path, capsys):
    rc, err = _run(capsys, "--source", str(video), option, str(tmp_path))
    assert rc == 2 and f"error: {option} {tmp_path} is a folder; give a file name" in err, err
    assert "Errno" not in err


def test_a_file_where_a_folder_belongs_names_the_option(video, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc, err = _run(capsys, "--source", str(video), "--out-dir", str(blocker))
    assert rc == 2 and f"error: --out-dir {blocker} is a file" in err, err


@pytest.mark.parametrize("option", list(ALL_OPTIONS))
def test_a_read_only_place_says_so(option, video, tmp_path, capsys):
    if option == "--report":
        pytest.importorskip("matplotlib")
    with read_only_folder(tmp_path / "ro") as ro:
        path = ro / ALL_OPTIONS[option]
        rc, err = _run(capsys, "--source", str(video), option, str(path))
        assert not path.exists()
    assert rc == 2, err
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert f"error: {option} {path}: cannot write in {ro}: {reason}" in err, err
    assert ".avi" not in err and "frames " not in err  # refused before the first frame


def test_a_new_out_dir_in_an_existing_folder_is_made(video, tmp_path, detector_dir, capsys):
    out = tmp_path / "annotated"
    rc, err = _run(capsys, "--source", str(video), "--out-dir", str(out))
    assert rc == 0, err
    assert len((out / "results.jsonl").read_text().splitlines()) == 60
