"""Atomic writes and file digests (edge.atomic)."""

from __future__ import annotations

import hashlib
import stat

import pytest

from edge.atomic import atomic_path, atomic_write_bytes, atomic_write_text, sha256_file


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    atomic_write_text(target, "new ünïcode")
    assert target.read_text(encoding="utf-8") == "new ünïcode"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.endswith(".keras")  # writers that read the suffix
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_mode_none_keeps_the_writers_permissions(tmp_path):
    target = tmp_path / "private.bin"
    with atomic_path(target, mode=None) as tmp:
        tmp.write_bytes(b"x")
        tmp.chmod(0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write_bytes(target, b"y", mode=0o640)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() == b"y"


def test_sha256_file_reads_in_chunks(tmp_path):
    data = bytes(range(256)) * 5000  # several chunks of 1 KiB
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path, chunk_bytes=1024) == hashlib.sha256(data).hexdigest()
