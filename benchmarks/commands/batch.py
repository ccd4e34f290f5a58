"""Speed of `fer-edge batch`: engines against `fer-edge run` one video after another, resume, photos.

Not a test: it measures. Every figure is one run of the real command in its own interpreter
(wall clock from start to exit, interpreter start included), except where "work" is said: there
the command runs inside an interpreter that has already imported fer-edge, and only its call is
timed. The 1-minute load average is recorded before and after each figure, because the machine
may be shared. The engines are compared over --rounds rounds, every other one in reverse order,
because a shared machine's speed drifts within minutes; the report gives every round and, as its
figures, the round with the median ratio (`median_index`).

- videos: 8 real-photo videos (benchmarks.photos.videos, seeds 0-2, the first 8 of interview
  640x360, clip 720x480, crowd 1920x1080 in turn, --frames each), through `fer-edge run --source V
  --headless --jsonl` one after another, `fer-edge batch --engine local`, and `--engine ray`, on
  a Ray head started beforehand on this machine (ray.cluster_utils.Cluster, shut down
  afterwards) and on a Ray the command starts itself;
- the ceiling: the batch's own per-input function (edge.batch.job.analyse, with the settings
  `fer-edge batch` gives its workers) over the same 8 videos in one process, after its imports.
  Its CPU seconds, spread over every core with no start-up, no idle core and no copy of the
  models per worker, are the most frames/s any engine could reach on this machine; each round
  gives that against its own runs one after another;
- resume: the 8 videos and 92 photos (100 inputs) analysed, then the same command again;
- photos: --photo-count distinct photos of the folder, default settings and --scan frame.

    python -m benchmarks.commands.batch --photos PHOTOS --out reports/batch
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs `fer-edge ARGS` after the imports and prints the seconds of the call alone (the "work").
_TIMED = ("import sys, time\nimport edge.cli, edge.batch.cli, edge.batch.engines, edge.cli.run\n"
          "t0 = time.perf_counter()\nrc = edge.cli.main(sys.argv[1:])\n"
          "print(f'WORK_S {time.perf_counter() - t0:.4f}', file=sys.stderr)\nsys.exit(rc)\n")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _timed(args: list[str], *, work: bool = False, env: dict | None = None) -> dict:
    """One command; its wall seconds (and the work seconds), the load before and after."""
    load0 = _load()
    cmd = [sys.executable, "-c", _TIMED, *args] if work else [sys.executable, "-m", "edge", *args]
    cpu0 = _children_cpu_s()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode not in (0,):
        raise RuntimeError(f"{' '.join(args[:3])}... exited {proc.returncode}: {proc.stderr[-2000:]}")
    # CPU of the command and the processes it waited for (its pool); Ray's workers are the raylet's, not counted.
    out = {"wall_s": round(wall, 3), "cpu_s": round(_children_cpu_s() - cpu0, 2), "load_before": load0,
           "load_after": _load()}
    if work:
        line = next(x for x in proc.stderr.splitlines() if x.startswith("WORK_S "))
        out["work_s"] = float(line.split()[1])
    return out


def one_process_work(listing: str) -> None:
    """In a fresh interpreter (the ceiling's subprocess): the batch's per-input function over the
    videos of `listing`, with the settings and the one-CPU set-up of a `fer-edge batch` worker;
    prints a JSON line with the CPU seconds of every thread of this process during the call."""
    from edge.batch.cli import batch_pipeline, hash_inputs
    from edge.batch.engines import one_cpu_each
    from edge.batch.inputs import expand
    from edge.batch.job import STATUS_OK, Settings, analyse
    from edge.cli import build_parser

    with tempfile.TemporaryDirectory(prefix="fer-edge-batch-ceiling-") as staging:
        args = build_parser().parse_args(["batch", f"@{listing}", "--out", staging])
        settings = Settings.resolve(batch_pipeline(args))
        tasks = hash_inputs(expand(args.inputs))  # as the batch command finds and names them
        one_cpu_each()
        cpu0, t0 = time.process_time(), time.perf_counter()
        outcomes = analyse(tasks, settings, staging=staging)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    failed = [o.task.path for o in outcomes if o.status != STATUS_OK]
    if failed:
        raise RuntimeError(f"the ceiling's run failed on {failed}")
    print(json.dumps({"cpu_s": round(cpu, 2), "wall_s": round(wall, 3),
                      "frames": sum(int(o.row["frames"]) for o in outcomes)}))


def ceiling(listing: Path, cores: int) -> dict:
    """The batch's work on `listing` in one process (one_process_work) and the frames/s it would
    give if its CPU seconds were spread over `cores` with nothing else to pay."""
    load0 = _load()
    code = "import sys\nfrom benchmarks.commands.batch import one_process_work\none_process_work(sys.argv[1])\n"
    proc = subprocess.run([sys.executable, "-c", code, str(listing)], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the ceiling's run exited {proc.returncode}: {proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return r | {"cores": cores, "fps": round(r["frames"] * cores / r["cpu_s"], 2), "load_before": load0,
                "load_after": _load()}


def _children_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _frames(out_dir: Path) -> int:
    import csv

    with open(out_dir / "index.csv", newline="") as f:
        return sum(int(r["frames"] or 0) for r in csv.DictReader(f))


def make_videos(photos: Path, folder: Path, frames: int) -> list[Path]:
    from benchmarks.photos.videos import make_all

    paths: list[Path] = []
    for seed in range(3):
        paths += make_all(photos, folder / f"seed{seed}", n_frames=frames, seed=seed)
    return paths[:8]


def photo_list(photos: Path, count: int, path: Path) -> Path:
    files = sorted(p for p in photos.rglob("*.jpg") if p.is_file())
    if len(files) < count:
        raise ValueError(f"{photos}: {len(files)} photos, {count} asked for")
    path.write_text("".join(f"{p.resolve()}\n" for p in files[:count]))
    return path


class RayHead:
    """A Ray head of `cpus` CPUs on this machine, started before the batch and shut down after it
    (ray.cluster_utils.Cluster, which ends exactly the processes it started)."""

    def __init__(self, cpus: int):
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, connect=False,
                               head_node_args={"num_cpus": cpus, "include_dashboard": False})
        self.cluster.wait_for_nodes()
        self.address = self.cluster.address

    def stop(self) -> None:
        self.cluster.shutdown()


def median_index(values: list[float]) -> int:
    """The index of the median of `values` (of the lower middle one for an even count)."""
    if not values:
        raise ValueError("no values")
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    return order[(len(values) - 1) // 2]


def measure(photos: Path, work: Path, frames: int, photo_count: int, ray: bool, rounds: int = 3) -> dict:
    videos = make_videos(photos, work / "videos", frames)
    listing = work / "videos.txt"
    listing.write_text("".join(f"{v}\n" for v in videos))
    result: dict = {"machine": {"cores": os.cpu_count()}, "videos": [v.name for v in videos]}

    def one_after_another() -> dict:
        serial = {"wall_s": 0.0, "cpu_s": 0.0, "load_before": _load()}
        frames_run = 0
        for v in videos:
            out = work / "serial" / f"{v.parent.name}_{v.stem}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            r = _timed(["run", "--source", str(v), "--headless", "--jsonl", str(out)])
            serial["wall_s"] += r["wall_s"]
            serial["cpu_s"] += r["cpu_s"]
            frames_run += sum(1 for _ in open(out))
        serial.update(load_after=_load(), frames=frames_run, fps=round(frames_run / serial["wall_s"], 2))
        serial["wall_s"], serial["cpu_s"] = round(serial["wall_s"], 3), round(serial["cpu_s"], 2)
        return serial

    def engine(name: str, *extra: str, env: dict | None = None) -> dict:
        out = work / name
        shutil.rmtree(out, ignore_errors=True)
        r = _timed(["batch", f"@{listing}", "--out", str(out), *extra], env=env)
        n = _frames(out)
        return r | {"frames": n, "fps": round(n / r["wall_s"], 2)}

    def ray_head() -> dict:
        head = RayHead(os.cpu_count() or 1)  # started and stopped outside the timed command
        try:
            return engine("ray_head", "--engine", "ray", "--address", head.address)
        finally:
            head.stop()

    from edge.batch.engines import default_jobs

    cores = default_jobs()  # the local engine's workers
    steps = {"run_one_after_another": one_after_another, "batch_local": lambda: engine("local"),
             "ceiling": lambda: ceiling(listing, cores)}
    if ray:
        steps["batch_ray_started_before"] = ray_head
    per_round = []
    for i in range(rounds):
        names = list(steps) if i % 2 == 0 else list(reversed(steps))
        figures = {"order": names} | {name: steps[name]() for name in names}
        local, serial = figures["batch_local"], figures["run_one_after_another"]
        local["x_run"] = round(local["fps"] / serial["fps"], 2)
        figures["ceiling"]["x_run"] = round(figures["ceiling"]["fps"] / serial["fps"], 2)
        if ray:
            e = figures["batch_ray_started_before"]
            e["of_local"] = round(e["fps"] / local["fps"], 3)
            e["x_run"] = round(e["fps"] / serial["fps"], 2)
        per_round.append(figures)
    result["rounds"] = per_round
    mid = per_round[median_index([f["batch_local"]["x_run"] for f in per_round])]
    result["run_one_after_another"], result["batch_local"] = mid["run_one_after_another"], mid["batch_local"]
    result["ceiling"] = mid["ceiling"]
    if ray:
        mid = per_round[median_index([f["batch_ray_started_before"]["of_local"] for f in per_round])]
        result["batch_ray_started_before"] = mid["batch_ray_started_before"]
        result["batch_ray_own"] = engine("ray_own", "--engine", "ray")
        own = result["batch_ray_own"]
        own["of_local"] = round(own["fps"] / result["batch_local"]["fps"], 3)
        own["x_run"] = round(own["fps"] / result["run_one_after_another"]["fps"], 2)

    mixed = work / "mixed.txt"
    extra_photos = photo_list(photos, 92, work / "photos92.txt").read_text()
    mixed.write_text(listing.read_text() + extra_photos)
    shutil.rmtree(work / "resume", ignore_errors=True)
    first = _timed(["batch", f"@{mixed}", "--out", str(work / "resume")], work=True)
    again = _timed(["batch", f"@{mixed}", "--out", str(work / "resume")], work=True)
    result["resume_100_inputs"] = {"first": first, "again": again}

    plist = photo_list(photos, photo_count, work / "photos.txt")
    for label, extra in (("default", []), ("scan_frame", ["--scan", "frame"])):
        out = work / f"photos_{label}"
        shutil.rmtree(out, ignore_errors=True)
        r = _timed(["batch", f"@{plist}", "--out", str(out), *extra], work=True)
        result[f"photos_{label}"] = r | {"photos": photo_count, "photos_per_s": round(photo_count / r["wall_s"], 1),
                                         "photos_per_work_s": round(photo_count / r["work_s"], 1)}
    return result


def markdown(r: dict, command: str) -> str:
    s, loc, top = r["run_one_after_another"], r["batch_local"], r["ceiling"]
    lines = [
        "# `fer-edge batch`: speed", "",
        f"Made by `{command}`. Wall clock of each command from start to exit (interpreter start included); "
        "'work' excludes the interpreter's start and imports. CPU s: the CPU time of the command and its "
        "worker processes. Load: the 1-minute load average before / after, "
        f"on {r['machine']['cores']} cores shared with other work.", "",
        f"## 8 real-photo videos ({s['frames']} frames: {', '.join(r['videos'])})", "",
        "| how | wall s | frames/s | vs run one after another | CPU s | load |", "|---|---:|---:|---:|---:|---|",
        f"| `fer-edge run` one after another | {s['wall_s']:.1f} | {s['fps']:.1f} | 1.00x | {s['cpu_s']:.1f} | "
        f"{s['load_before']} / {s['load_after']} |",
        f"| `fer-edge batch --engine local` | {loc['wall_s']:.1f} | {loc['fps']:.1f} | {loc['x_run']:.2f}x | "
        f"{loc['cpu_s']:.1f} | {loc['load_before']} / {loc['load_after']} |",
        f"| the ceiling: the same work in one process, its CPU s spread over {top['cores']} cores | - | "
        f"{top['fps']:.1f} | {top['x_run']:.2f}x | {top['cpu_s']:.1f} | {top['load_before']} / {top['load_after']} |",
    ]
    for key, what in (("batch_ray_started_before", "`--engine ray --address` (Ray started beforehand)"),
                      ("batch_ray_own", "`--engine ray` (starts its own Ray)")):
        if key in r:
            e = r[key]
            lines.append(f"| {what} | {e['wall_s']:.1f} | {e['fps']:.1f} | {e['x_run']:.2f}x "
                         f"({100 * e['of_local']:.0f} % of local) | (Ray's workers) | {e['load_before']} / "
                         f"{e['load_after']} |")
    lines += ["", f"The ceiling is the most frames/s that {top['cores']} cores allow this work: the batch's own "
              f"per-input function ran over the same videos in one process after its imports ({top['wall_s']:.1f} s "
              f"on one core, {top['cpu_s']:.1f} CPU s with its decoding and capture threads), and its CPU seconds "
              "are counted as if spread over every core, with no interpreter or model load per worker and no "
              "core ever idle. No engine passes it without spending less CPU per frame, in the frame loop "
              "that `fer-edge run` runs too."]
    if r.get("rounds"):
        lines += ["", f"Each engine's row above is its round with the median ratio of {len(r['rounds'])} rounds "
                  "(every other one in reverse order): local's against the runs one after another of that "
                  "round (the first row), Ray's against local of its round; Ray's own start once, after "
                  "them. Every round:", "",
                  "| round | order | run one after another, frames/s | local, frames/s | local / run | "
                  "ceiling / run | Ray (address), frames/s | Ray / local |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
        short = {"run_one_after_another": "run", "batch_local": "local", "ceiling": "ceiling",
                 "batch_ray_started_before": "Ray"}
        for i, f in enumerate(r["rounds"], 1):
            ray_e = f.get("batch_ray_started_before")
            ray_cells = f"{ray_e['fps']:.1f} | {100 * ray_e['of_local']:.0f} %" if ray_e else "- | -"
            order = ", ".join(short[n] for n in f["order"])
            lines.append(f"| {i} | {order} | {f['run_one_after_another']['fps']:.1f} | "
                         f"{f['batch_local']['fps']:.1f} | {f['batch_local']['x_run']:.2f}x | "
                         f"{f['ceiling']['x_run']:.2f}x | {ray_cells} |")
    res = r["resume_100_inputs"]
    lines += ["", "## Resume: 100 inputs (the 8 videos and 92 photos), finished, run again", "",
              "| run | wall s | work s | load |", "|---|---:|---:|---|"]
    for key in ("first", "again"):
        e = res[key]
        lines.append(f"| {key} | {e['wall_s']:.2f} | {e['work_s']:.2f} | {e['load_before']} / {e['load_after']} |")
    lines += ["", "## Photos, `--engine local`", "",
              "| settings | photos | wall s | photos/s | work s | photos/s of work | CPU s | photos per CPU s | load |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, what in (("photos_default", "default"), ("photos_scan_frame", "`--scan frame`")):
        e = r[key]
        lines.append(f"| {what} | {e['photos']} | {e['wall_s']:.1f} | {e['photos_per_s']:.1f} | {e['work_s']:.1f} | "
                     f"{e['photos_per_work_s']:.1f} | {e['cpu_s']:.1f} | {e['photos'] / e['cpu_s']:.1f} | "
                     f"{e['load_before']} / {e['load_after']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from edge.cli import HelpFormatter

    ap = argparse.ArgumentParser(prog="python -m benchmarks.commands.batch", description=__doc__.split("\n\n")[0],
                                 formatter_class=HelpFormatter)
    ap.add_argument("--photos", required=True, help="labelled photo folder: <class>/<image>, e.g. 1,000 real photos")
    ap.add_argument("--out", default="reports/batch", help="where batch.json and batch.md go")
    ap.add_argument("--work", default=None, help="scratch folder for videos and outputs (default: a temporary one)")
    ap.add_argument("--frames", type=int, default=150, help="frames per video (10 s at 15 fps)")
    ap.add_argument("--photo-count", type=int, default=1000, help="photos for the photos/s figure")
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray figures")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of `fer-edge run` one after another against the engines, every other one reversed; "
                    "the report's figures are the round with the median ratio")
    args = ap.parse_args(argv)
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="fer-edge-batch-bench-")
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.commands.batch " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        if args.rounds < 1:
            raise ValueError("--rounds must be at least 1")
        result = measure(Path(args.photos), work, args.frames, args.photo_count, ray=not args.no_ray,
                         rounds=args.rounds)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    result["command"] = command
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "batch.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result, command)
    (out / "batch.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
