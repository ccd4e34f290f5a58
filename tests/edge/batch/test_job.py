"""edge.batch.job and the order inputs are handed out: one worker's videos share its loaded models
and still get exactly the records `fer-edge run` writes for each; long videos start first."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_helpers import make_photos, make_videos, records, run_records
from edge.batch.cli import _largest_first
from edge.batch.job import STATUS_OK, Settings, Task, analyse
from edge.pipeline import PipelineConfig


@pytest.fixture(scope="module")
def videos(tmp_path_factory, faces_dir, detector_dir):
    root = tmp_path_factory.mktemp("videos")
    return make_videos(root, faces_dir, 3, frames=20)


def test_videos_after_one_another_in_one_worker_match_fer_edge_run(videos, tmp_path):
    settings = Settings.resolve(PipelineConfig())
    # The same video before and after the others: a detector or tracker state left over from an
    # earlier video would change its records (track ids, remembered faces, the tile schedule).
    order = [videos[1], videos[0], videos[2], videos[1]]
    tasks = [Task(str(v), "video", f"{i:064x}", f"{v.stem}_{i}") for i, v in enumerate(order)]
    staging = tmp_path / "staging"
    staging.mkdir()
    outcomes = analyse(tasks, settings, staging=str(staging))
    assert [o.status for o in outcomes] == [STATUS_OK] * len(order), [o.row.get("error") for o in outcomes]
    for video, outcome in zip(order, outcomes):
        want = run_records(video, tmp_path / f"ref_{video.stem}.jsonl")
        assert records(Path(outcome.files[".jsonl"])) == want, video.name
        assert outcome.row["frames"] == len(want)


def _task(path, kind):
    return Task(str(path), kind, "0" * 64, path.stem)


def test_videos_run_largest_first_then_the_photos(tmp_path, videos):
    photos = make_photos(tmp_path / "photos", videos[0], 2)
    sizes = {v: v.stat().st_size for v in videos}
    gone = tmp_path / "gone.mp4"
    tasks = [_task(photos[0], "image"), *(_task(v, "video") for v in videos), _task(gone, "missing"),
             _task(photos[1], "image")]
    ordered = _largest_first(tasks)
    want = sorted(videos, key=sizes.get, reverse=True)
    assert [t.path for t in ordered] == [*map(str, want), str(gone), str(photos[0]), str(photos[1])]
