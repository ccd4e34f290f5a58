"""`fer-edge batch --engine ray` on a real two-node Ray cluster on this machine (ray.cluster_utils.Cluster):
the node running the batch's tasks is killed mid-batch, its inputs are run again on a new node, and every
input ends with exactly one finished output whose records are the local engine's."""

from __future__ import annotations

import pytest

from batch_helpers import assert_whole, batch, index_rows, make_videos, records, start_batch, wait_for_done_files

ray = pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install '.[scale]' (.ci/run installs it)")


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A head node with no CPU (it runs no task) and one worker node of 1 CPU. The nodes' processes
    inherit this environment: no detector model anywhere they look (no FER_EDGE_MODEL_DIR, an empty
    cache under tmp_path), so the models must travel with the job."""
    from ray.cluster_utils import Cluster

    monkeypatch.delenv("FER_EDGE_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no report to Ray's servers from a test
    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    try:
        yield c
    finally:
        c.shutdown()


def test_a_worker_node_killed_mid_batch_loses_nothing_and_duplicates_nothing(cluster, faces_dir, detector_dir,
                                                                              tmp_path):
    videos = make_videos(tmp_path / "videos", faces_dir, 6, frames=45)
    local = tmp_path / "local"
    proc = batch(str(tmp_path / "videos"), "--out", str(local), env={"FER_EDGE_MODEL_DIR": str(detector_dir)})
    assert proc.returncode == 0, proc.stderr

    out = tmp_path / "ray"
    env = {"FER_EDGE_MODEL_DIR": str(detector_dir)}  # the driver's models; the workers get them from it
    driver = start_batch(str(tmp_path / "videos"), "--out", str(out), "--engine", "ray",
                         "--address", cluster.address, "--retries", "3", env=env)
    # Every task runs on the one worker node; once an input is done, the next is running there.
    done_before = wait_for_done_files(out / "runs", 1, driver)
    assert driver.poll() is None and done_before < len(videos), "the batch ended before the node could be killed"
    worker = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    cluster.remove_node(worker, allow_graceful=False)  # SIGKILL: its raylet and the task it was running
    cluster.add_node(num_cpus=1)  # somewhere for the lost work to go
    _, stderr = driver.communicate(timeout=900)
    assert driver.returncode == 0, stderr

    done = assert_whole(out)
    assert len(done) == len(videos)
    travelled = sorted(p.name for p in (tmp_path / "cache" / "fer-edge" / "batch-models").rglob("*") if p.is_file())
    assert travelled == sorted([detector_dir.joinpath("blaze_face_short_range.tflite").name, "emotion_int8.json",
                                "emotion_int8.tflite"])
    rows = index_rows(out)
    local_rows = {r["path"]: r for r in index_rows(local)}
    assert [r["status"] for r in rows] == ["ok"] * len(videos)
    for row in rows:
        twin = local_rows[row["path"]]
        assert row["output"] == twin["output"]
        assert records(out / row["output"]) == records(local / twin["output"])
        assert (out / row["output"].replace(".jsonl", ".summary.csv")).read_text() == \
            (local / twin["output"].replace(".jsonl", ".summary.csv")).read_text()
        assert {k: v for k, v in row.items() if k != "wall_s"} == {k: v for k, v in twin.items() if k != "wall_s"}
