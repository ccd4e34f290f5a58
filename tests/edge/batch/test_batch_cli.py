"""`fer-edge batch` on the local engine: fer-edge run's records per input, the index, resume, and faults
(a corrupt file, a path that disappears mid-batch, SIGTERM) with nothing lost or written twice."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from batch_helpers import (assert_whole, batch, index_rows, make_photos, make_videos, records, run_records,
                           start_batch, wait_for_done_files)
from edge.labels import LABELS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, faces_dir, detector_dir):
    """3 videos, 2 photos and the records `fer-edge run` writes for each, by path."""
    root = tmp_path_factory.mktemp("corpus")
    videos = make_videos(root / "videos", faces_dir, 3)
    photos = make_photos(root / "photos", videos[0], 2)
    ref = root / "reference"
    ref.mkdir()
    reference = {str(p): run_records(p, ref / f"{p.stem}.jsonl") for p in [*videos, *photos]}
    return root, videos, photos, reference


@pytest.fixture(scope="module")
def broken(corpus):
    """A cut MP4, a JPEG whose data is noise, a text file: each to be an error row."""
    root, videos, _, _ = corpus
    folder = root / "broken"
    folder.mkdir()
    (folder / "cut.mp4").write_bytes(videos[1].read_bytes()[:4000])
    (folder / "noise.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    (folder / "notes.txt").write_text("not a video\n")
    return [folder / "cut.mp4", folder / "noise.jpg", folder / "notes.txt"]


@pytest.fixture(scope="module")
def first_batch(corpus, broken, tmp_path_factory):
    root, videos, photos, _ = corpus
    out = tmp_path_factory.mktemp("batch") / "out"
    copy = root / "copy_of_clip0.mp4"  # the same content under another name
    copy.write_bytes(videos[0].read_bytes())
    args = [str(root / "videos"), str(photos[0]), str(photos[1]), *map(str, broken), str(videos[0]), str(copy),
            "--out", str(out)]
    return args, out, batch(*args)


def test_each_input_gets_fer_edge_runs_records_and_one_index_row(corpus, broken, first_batch):
    root, videos, photos, reference = corpus
    args, out, proc = first_batch
    assert proc.returncode == 1, proc.stderr  # some inputs failed
    rows = index_rows(out)
    # One row per listed file, in order: a file named twice is one input; a copy under another name is its own.
    listed = [*map(str, videos), *map(str, photos), *map(str, broken), str(root / "copy_of_clip0.mp4")]
    assert [r["path"] for r in rows] == listed
    assert rows[-1]["status"] == "ok" and rows[-1]["sha256"] == rows[0]["sha256"]
    assert records(out / rows[-1]["output"]) == reference[str(videos[0])]
    assert assert_whole(out).keys() == {Path(r["output"]).name.removesuffix(".jsonl") for r in rows if r["output"]}
    assert len(list((out / "runs").glob("*.jsonl"))) == len(videos) + len(photos) + 1
    for row in rows:
        if row["path"] in reference:
            assert row["status"] == "ok" and row["error"] == "" and row["reused"] == "false"
            want = reference[row["path"]]
            assert records(out / row["output"]) == want
            assert int(row["frames"]) == len(want)
            assert int(row["faces"]) == sum(len(r["faces"]) for r in want)
            shares = [float(row[f"share_{label}"]) for label in LABELS]
            assert sum(shares) == pytest.approx(1.0, abs=1e-3)
            assert len(row["sha256"]) == 64 and float(row["wall_s"]) > 0
    video_rows = [r for r in rows if r["kind"] == "video" and r["path"] in reference]
    for row in video_rows:
        ids = {f["id"] for rec in reference[row["path"]] for f in rec["faces"]}
        assert int(row["tracks"]) == len(ids)
        assert float(row["seconds"]) == pytest.approx(30 / 15.0, abs=0.01)  # 30 frames at 15 fps
    assert {r["kind"] for r in rows if r["path"] in map(str, photos)} == {"image"}
    assert all(r["seconds"] == "" and r["tracks"] == "" for r in rows if r["kind"] == "image")


@pytest.mark.parametrize("name, message", [
    ("cut.mp4", "cannot open"),
    ("noise.jpg", "not a readable image"),
    ("notes.txt", "neither a video nor an image"),
])
def test_a_corrupt_or_foreign_file_is_an_error_row_and_the_batch_goes_on(first_batch, name, message):
    _, out, proc = first_batch
    row = next(r for r in index_rows(out) if Path(r["path"]).name == name)
    assert row["status"] == "error" and message in row["error"] and row["output"] == ""
    assert f"failed: {row['path']}" in proc.stderr


def test_the_summary_csv_of_a_video_is_fer_edge_reports(corpus, first_batch, tmp_path):
    from edge.report.summary import make_report
    from edge.report.types import ReportConfig

    root, videos, _, _ = corpus
    _, out, _ = first_batch
    row = next(r for r in index_rows(out) if r["path"] == str(videos[1]))
    make_report(root / "reference" / f"{videos[1].stem}.jsonl", tmp_path, ReportConfig(chart=False))
    summary = out / row["output"].replace(".jsonl", ".summary.csv")
    assert summary.read_text() == (tmp_path / "summary.csv").read_text()


def test_batch_json_and_parquet_hold_the_settings_and_the_index(first_batch):
    _, out, _ = first_batch
    description = json.loads((out / "batch.json").read_text())
    settings = description["settings"]
    assert settings["pipeline"]["tracker"]["smooth"] is True and settings["pipeline"]["detector"]["scan"] == "auto"
    assert set(settings["models"]) == {"emotion", "sidecar", "detector"}
    assert all(len(m["sha256"]) == 64 for m in settings["models"].values())
    assert description["status"] == "finished" and description["counts"]["error"] == 3
    pq = pytest.importorskip("pyarrow.parquet", reason="index.parquet is written only when pyarrow is installed")
    table = pq.read_table(out / "index.parquet").to_pylist()
    rows = index_rows(out)
    assert [t["path"] for t in table] == [r["path"] for r in rows]
    assert [t["frames"] for t in table] == [int(r["frames"]) if r["frames"] else None for r in rows]


def test_a_second_run_skips_what_is_finished_and_other_settings_redo_it(first_batch):
    args, out, _ = first_batch
    before = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir() if p.is_file()}
    again = batch(*args)
    assert again.returncode == 1, again.stderr  # the broken files are tried again, and fail again
    rows = index_rows(out)
    assert {r["reused"] for r in rows if r["status"] == "ok"} == {"true"}
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir() if p.is_file()} == before
    assert "6 from an earlier run" in again.stderr
    changed = batch(*args, "--no-smooth")
    assert changed.returncode == 1, changed.stderr
    rows = index_rows(out)
    assert {r["reused"] for r in rows if r["status"] == "ok"} == {"false"}
    assert len(list((out / "runs").glob("*.jsonl"))) == 6  # replaced, not added
    assert_whole(out)


def test_a_path_that_disappears_mid_batch_is_an_error_row(faces_dir, detector_dir, tmp_path):
    videos = make_videos(tmp_path / "videos", faces_dir, 5)
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(str(v) for v in videos) + "\n")
    out = tmp_path / "out"
    proc = start_batch(f"@{listing}", "--out", str(out), "--jobs", "1")
    # Videos run largest first; one worker, at most two chunks in flight: the smallest video is not
    # started before the first is done.
    smallest = min(videos, key=lambda v: v.stat().st_size)
    wait_for_done_files(out / "runs", 1, proc)
    smallest.unlink()
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr
    rows = index_rows(out)
    assert [r["path"] for r in rows] == [str(v) for v in videos]  # the index keeps the input order
    assert [r["status"] for r in rows] == ["error" if v == smallest else "ok" for v in videos]
    assert "cannot open" in next(r["error"] for r in rows if r["path"] == str(smallest))
    assert len(assert_whole(out)) == 4


def test_sigterm_keeps_every_finished_input_and_the_next_run_does_the_rest(faces_dir, detector_dir, tmp_path):
    videos = make_videos(tmp_path / "videos", faces_dir, 5, frames=45)
    out = tmp_path / "out"
    args = [str(tmp_path / "videos"), "--out", str(out), "--jobs", "1"]
    proc = start_batch(*args)
    wait_for_done_files(out / "runs", 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped" in stderr
    done = assert_whole(out)
    rows = index_rows(out)
    assert 1 <= len(done) < len(videos)
    assert sum(r["status"] == "ok" for r in rows) == len(done)
    assert {r["status"] for r in rows if r["status"] != "ok"} <= {"interrupted", "not started"}
    assert json.loads((out / "batch.json").read_text())["status"] == "stopped"
    finished_at = {name: marker["finished"] for name, marker in done.items()}

    rest = batch(*args)
    assert rest.returncode == 0, rest.stderr
    done = assert_whole(out)
    assert len(done) == len(videos)
    assert {name: done[name]["finished"] for name in finished_at} == finished_at  # kept, not written again
    for row in index_rows(out):
        assert row["status"] == "ok"
        assert records(out / row["output"]) == run_records(Path(row["path"]), tmp_path / "ref.jsonl")
