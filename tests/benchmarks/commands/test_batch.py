"""The batch benchmark's choice of round, its ceiling and its report (benchmarks.commands.batch);
the speed itself is measured, not tested."""

from __future__ import annotations

import json

import pytest

from benchmarks.commands.batch import ceiling, markdown, median_index


@pytest.mark.parametrize("values, index", [
    ([1.5], 0),
    ([1.9, 1.5, 1.7], 2),
    ([1.5, 1.7, 1.9], 1),
    ([2.0, 1.0], 1),  # an even count: the lower middle one
    ([1.6, 1.6, 1.8, 1.4], 0),  # ties: the earlier round
])
def test_the_median_round(values, index):
    assert median_index(values) == index


def test_no_round_is_an_error():
    with pytest.raises(ValueError):
        median_index([])


def _entry(fps: float, **extra) -> dict:
    return {"wall_s": 10.0, "cpu_s": 20.0, "load_before": 1.0, "load_after": 1.5, "fps": fps, "frames": 1200} | extra


def _ceiling(fps: float, run_fps: float) -> dict:
    return _entry(fps, cores=2, x_run=round(fps / run_fps, 2))


def test_the_report_shows_every_round_and_the_median_one_as_its_figures():
    rounds = [{"order": ["run_one_after_another", "batch_local", "ceiling", "batch_ray_started_before"],
               "run_one_after_another": _entry(60.0), "batch_local": _entry(fps, x_run=round(fps / 60.0, 2)),
               "ceiling": _ceiling(top, 60.0),
               "batch_ray_started_before": _entry(ray, of_local=round(ray / fps, 3), x_run=round(ray / 60.0, 2))}
              for fps, top, ray in ((96.0, 120.0, 80.0), (114.0, 126.0, 99.0), (105.0, 123.0, 93.0))]
    result = {"machine": {"cores": 2}, "videos": ["a.mp4"] * 8, "rounds": rounds,
              "run_one_after_another": rounds[2]["run_one_after_another"], "batch_local": rounds[2]["batch_local"],
              "ceiling": rounds[2]["ceiling"], "batch_ray_started_before": rounds[2]["batch_ray_started_before"],
              "resume_100_inputs": {k: _entry(0.0, work_s=0.3) for k in ("first", "again")},
              **{k: _entry(0.0, photos=1000, photos_per_s=200.0, photos_per_work_s=220.0)
                 for k in ("photos_default", "photos_scan_frame")}}
    for k in ("photos_default", "photos_scan_frame"):
        result[k]["work_s"] = 4.5
    text = markdown(result, "python -m benchmarks.commands.batch --photos P")
    assert "| `fer-edge batch --engine local` | 10.0 | 105.0 | 1.75x |" in text
    assert "| the ceiling: the same work in one process, its CPU s spread over 2 cores | - | 123.0 | 2.05x |" in text
    assert "median ratio of 3 rounds" in text
    for i, (local, ratio, top) in enumerate(((96.0, "1.60x", "2.00x"), (114.0, "1.90x", "2.10x"),
                                             (105.0, "1.75x", "2.05x")), 1):
        assert f"| {i} | run, local, ceiling, Ray | 60.0 | {local:.1f} | {ratio} | {top} |" in text


def test_rays_row_compares_with_the_runs_of_its_own_round():
    """Ray's median round (by Ray / local) need not be local's: its ratio to the runs one after
    another comes from its own round, never from another round's runs."""
    rounds = []
    for run, fps, ray in ((50.0, 100.0, 95.0), (70.0, 119.0, 99.0), (60.0, 105.0, 80.0)):
        rounds.append({"order": ["run_one_after_another", "batch_local", "batch_ray_started_before"],
                       "run_one_after_another": _entry(run), "batch_local": _entry(fps, x_run=round(fps / run, 2)),
                       "ceiling": _ceiling(130.0, run),
                       "batch_ray_started_before": _entry(ray, of_local=round(ray / fps, 3),
                                                          x_run=round(ray / run, 2))})
    # local / run: 2.00, 1.70, 1.75 -> round 3; Ray / local: 95 %, 83 %, 76 % -> round 2
    result = {"machine": {"cores": 2}, "videos": ["a.mp4"] * 8, "rounds": rounds,
              "run_one_after_another": rounds[2]["run_one_after_another"], "batch_local": rounds[2]["batch_local"],
              "ceiling": rounds[2]["ceiling"], "batch_ray_started_before": rounds[1]["batch_ray_started_before"],
              "resume_100_inputs": {k: _entry(0.0, work_s=0.3) for k in ("first", "again")},
              **{k: _entry(0.0, photos=1000, photos_per_s=200.0, photos_per_work_s=220.0, work_s=4.5)
                 for k in ("photos_default", "photos_scan_frame")}}
    text = markdown(result, "python -m benchmarks.commands.batch --photos P")
    assert "| `fer-edge batch --engine local` | 10.0 | 105.0 | 1.75x |" in text
    assert "| 99.0 | 1.41x (83 % of local) |" in text  # 99 / 70, not 99 / 60


@pytest.fixture(scope="module")
def listing(tmp_path_factory, face_crops, detector_dir):
    """Two short real videos (one and two faces) and a listing of them, as the benchmark writes it."""
    from benchmarks.scenes.synthetic import make_scene_video

    root = tmp_path_factory.mktemp("ceiling")
    faces, labels = face_crops
    videos = [make_scene_video(root / f"clip{i}.mp4", faces, labels, n_frames=12, size=(640, 360),
                               faces_per_frame=1 + i, face_px=(120, 160), seed=i) for i in range(2)]
    path = root / "videos.txt"
    path.write_text("".join(f"{root / truth.video}\n" for truth in videos))
    return path


@pytest.mark.parametrize("cores", [1, 2, 4])
def test_the_ceiling_spreads_the_batchs_own_work_over_the_cores(listing, cores):
    """The batch's per-input function really runs, in its own interpreter, over every listed video."""
    r = ceiling(listing, cores)
    assert r["frames"] == 24
    assert r["cpu_s"] > 0 and r["wall_s"] > 0
    assert r["fps"] == pytest.approx(24 * cores / r["cpu_s"], rel=1e-3)
    assert r["cores"] == cores
    json.dumps(r)  # it goes into batch.json as it is


def test_a_ceiling_run_that_fails_on_an_input_is_an_error(tmp_path, listing):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    bad = tmp_path / "videos.txt"
    bad.write_text(listing.read_text() + f"{broken}\n")
    with pytest.raises(RuntimeError, match="broken.mp4"):
        ceiling(bad, 2)
