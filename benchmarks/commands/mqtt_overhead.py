"""What `--mqtt` costs a headless run: frames/s with and without it, on the same video, in one process.

A real broker (Debian's mosquitto, started here on a free loopback port) receives every frame's
record. The runs alternate, with and without MQTT, so that a machine whose load drifts shifts
both sides alike; the report gives each pair's ratio and their median.

    python -m benchmarks.commands.mqtt_overhead --source VIDEO --frames 3000 --rounds 6 --out reports/mqtt

`--frames` plays the video over and over to that length first (a copy in a temporary folder), so
that the connection at the start and the flush at the end weigh little against the frames.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.speed.soak import looped_copy
from edge.atomic import atomic_write_text
from edge.cli import build_parser
from edge.cli.run import RunConfig, run
from edge.loop import RunSummary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A mosquitto broker on 127.0.0.1:port for the length of a `with` block."""

    def __init__(self, folder: Path):
        exe = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None)
        if exe is None:
            raise SystemExit("mosquitto is not installed: `apt-get install mosquitto` (Debian's package)")
        self.exe, self.folder, self.port = exe, folder, free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Mosquitto":
        conf = self.folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = subprocess.Popen([self.exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"mosquitto did not start listening on port {self.port}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def timed_run(argv: list[str]) -> dict:
    """One `fer-edge run` (as the CLI parses it); frames, wall seconds, frames/s and CPU seconds."""
    summary = RunSummary()
    config = RunConfig.from_args(build_parser().parse_args(["run", *argv]))
    cpu0, t0 = time.process_time(), time.perf_counter()
    rc = run(config, summary=summary, quiet=True)
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    if rc != 0:
        raise SystemExit(f"fer-edge run {' '.join(argv)} exited {rc}")
    return {"frames": summary.frames, "wall_s": round(wall_s, 3), "fps": round(summary.frames / wall_s, 2),
            "cpu_s": round(cpu_s, 3)}


def measure(source: str, rounds: int, work: Path) -> dict:
    base = ["--source", source, "--headless", "--log-level", "warning"]
    pairs = []
    with Mosquitto(work) as broker:
        url = f"mqtt://127.0.0.1:{broker.port}/bench"
        timed_run(base + ["--jsonl", str(work / "warm.jsonl")])  # models and caches warm
        for i in range(rounds):
            plain_argv = base + ["--jsonl", str(work / f"plain{i}.jsonl")]
            mqtt_argv = base + ["--jsonl", str(work / f"mqtt{i}.jsonl"), "--mqtt", url, "--mqtt-device", "bench"]
            order = (plain_argv, mqtt_argv) if i % 2 == 0 else (mqtt_argv, plain_argv)
            first, second = timed_run(order[0]), timed_run(order[1])
            plain, mqtt = (first, second) if i % 2 == 0 else (second, first)
            pairs.append({"plain": plain, "mqtt": mqtt, "ratio": round(mqtt["fps"] / plain["fps"], 3)})
    ratios = [p["ratio"] for p in pairs]
    return {"source": source, "rounds": rounds, "pairs": pairs,
            "median_ratio": round(float(np.median(ratios)), 3),
            "median_fps_plain": round(float(np.median([p["plain"]["fps"] for p in pairs])), 1),
            "median_fps_mqtt": round(float(np.median([p["mqtt"]["fps"] for p in pairs])), 1),
            "cpu_s_plain": round(float(np.sum([p["plain"]["cpu_s"] for p in pairs])), 2),
            "cpu_s_mqtt": round(float(np.sum([p["mqtt"]["cpu_s"] for p in pairs])), 2),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def markdown(r: dict, command: str) -> str:
    lines = ["| round | without MQTT (frames/s) | with `--mqtt` (frames/s) | ratio |", "|---|---:|---:|---:|"]
    for i, p in enumerate(r["pairs"], 1):
        lines.append(f"| {i} | {p['plain']['fps']:.1f} | {p['mqtt']['fps']:.1f} | {p['ratio']:.3f} |")
    lines += ["", f"Median ratio {r['median_ratio']:.3f} ({r['median_fps_mqtt']:.1f} against "
              f"{r['median_fps_plain']:.1f} frames/s); process CPU {r['cpu_s_mqtt']:.2f} s with MQTT against "
              f"{r['cpu_s_plain']:.2f} s without; load average at the end {r['load_average']}.", "",
              f"Source: `{r['source']}`, {r.get('frames_per_run', '?')} frames per run. Regenerate: `{command}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.commands.mqtt_overhead", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="a video file")
    ap.add_argument("--frames", type=int, default=3000,
                    help="play the video over and over to this many frames first (0: as it is)")
    ap.add_argument("--rounds", type=int, default=6, help="pairs of runs, with and without MQTT")
    ap.add_argument("--out", type=Path, default=Path("reports/mqtt"), help="folder for mqtt.json and mqtt.md")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        source = str(looped_copy(args.source, args.frames, tmp)) if args.frames else args.source
        r = measure(source, args.rounds, Path(tmp))
    r["source"] = args.source
    r["frames_per_run"] = r["pairs"][0]["plain"]["frames"]
    command = (f"python -m benchmarks.commands.mqtt_overhead --source {args.source} --frames {args.frames} "
               f"--rounds {args.rounds} --out {args.out}")
    r["command"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "mqtt.json", json.dumps(r, indent=1) + "\n", mode=None)
    text = markdown(r, command)
    atomic_write_text(args.out / "mqtt.md", text, mode=None)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
