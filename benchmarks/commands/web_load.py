"""Load benchmark for `fer-edge serve`: N concurrent clients POST images to /api/predict.

Not a test: it reports speed. For each --pipelines value it starts a real `fer-edge serve` on
127.0.0.1 (a free port), warms it up, runs --clients threads that post the same image over
keep-alive connections for --duration-s seconds, and reports requests/s, latency percentiles,
errors, and the server's RSS (psutil) before and after. `--pipelines 1,2` compares one pipeline
behind a lock with a pool of two.

    python -m benchmarks.commands.web_load --clients 20 --duration-s 60 --pipelines 1,2
    python -m benchmarks.commands.web_load --url http://127.0.0.1:8000 --token T   # an already running server
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from train.data import default_data_path

REPO = Path(__file__).resolve().parents[1]
# $FER_EDGE_DATA, else the fallback taken from the repository root (this script runs from anywhere).
DEFAULT_DATA = Path(default_data_path()).expanduser().resolve()


@dataclass
class LoadResult:
    pipelines: int | None  # None: an external server
    clients: int
    duration_s: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    faces_per_response: float
    rss_before_mb: float | None
    rss_after_mb: float | None
    server_threads: int | None


def face_image_jpeg(data_dir: Path, side: int = 240, size=(640, 480)) -> bytes:
    """A FER-2013 test face upscaled onto a 640x480 background, as JPEG bytes."""
    import cv2

    paths = sorted((data_dir / "test" / "happy").glob("PublicTest_*.jpg"))
    if not paths:
        raise SystemExit(f"no FER-2013 test faces under {data_dir}/test/happy (give --image or --data)")
    face = cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE)
    w, h = size
    image = np.full((h, w, 3), 90, np.uint8)
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    x, y = (w - side) // 2, (h - side) // 2
    image[y:y + side, x:x + side] = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def multipart(data: bytes, filename: str = "face.jpg") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Client(threading.Thread):
    """Posts the body back to back on one keep-alive connection until `stop`; records latencies."""

    def __init__(self, host: str, port: int, body: bytes, content_type: str, token: str | None,
                 stop: threading.Event, measure: threading.Event):
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.body, self.headers = body, {"Content-Type": content_type}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.stop, self.measure = stop, measure
        self.latencies_ms: list[float] = []
        self.errors = 0
        self.faces = 0

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                conn.request("POST", "/api/predict", body=self.body, headers=self.headers)
                resp = conn.getresponse()
                payload = resp.read()
                ok = resp.status == 200
                n_faces = len(json.loads(payload)["faces"]) if ok else 0
            except (OSError, http.client.HTTPException, ValueError):
                ok, n_faces = False, 0
                if conn is not None:
                    conn.close()
                conn = None
            if self.measure.is_set() and not self.stop.is_set():
                if ok:
                    self.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
                    self.faces += n_faces
                else:
                    self.errors += 1
        if conn is not None:
            conn.close()


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def run_load(url: str, body: bytes, content_type: str, *, clients: int, duration_s: float, warmup_s: float,
             token: str | None, pid: int | None, pipelines: int | None, server_threads: int | None) -> LoadResult:
    u = urllib.parse.urlparse(url)
    stop, measure = threading.Event(), threading.Event()
    threads = [Client(u.hostname, u.port, body, content_type, token, stop, measure) for _ in range(clients)]
    rss_before = rss_mb(pid)
    for t in threads:
        t.start()
    time.sleep(warmup_s)  # connections open, interpreters warm
    measure.set()
    t0 = time.perf_counter()
    time.sleep(duration_s)
    stop.set()
    elapsed = time.perf_counter() - t0
    for t in threads:
        t.join(130)
    rss_after = rss_mb(pid)
    lat = np.array([x for t in threads for x in t.latencies_ms], np.float64)
    n = int(lat.size)
    pct = (lambda q: round(float(np.percentile(lat, q)), 1)) if n else (lambda q: float("nan"))
    return LoadResult(pipelines=pipelines, clients=clients, duration_s=round(elapsed, 1), requests=n,
                      errors=sum(t.errors for t in threads), rps=round(n / elapsed, 2),
                      p50_ms=pct(50), p95_ms=pct(95), p99_ms=pct(99),
                      max_ms=round(float(lat.max()), 1) if n else float("nan"),
                      faces_per_response=round(sum(t.faces for t in threads) / max(n, 1), 3),
                      rss_before_mb=round(rss_before, 1) if rss_before else None,
                      rss_after_mb=round(rss_after, 1) if rss_after else None, server_threads=server_threads)


def start_server(pipelines: int, threads: int, extra: list[str], timeout_s: float = 300.0):
    """`fer-edge serve --port 0` in a subprocess -> (proc, url)."""
    cmd = [sys.executable, "-m", "edge", "serve", "--port", "0", "--pipelines", str(pipelines),
           "--http-threads", str(threads), *extra]
    env = {k: v for k, v in os.environ.items() if k != "FER_EDGE_TOKEN"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    url = None
    for line in proc.stdout:
        m = re.search(r"fer-edge serve: (http://\S+?)/ ", line)
        if m:
            url = m.group(1)
            break
        if time.monotonic() > deadline:
            break
    if url is None:
        proc.kill()
        raise SystemExit(f"server did not start: {' '.join(cmd)}")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep draining
    return proc, url


def stop_server(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.commands.web_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="benchmark this running server instead of starting one")
    p.add_argument("--token", default=None, help="bearer token for --url")
    p.add_argument("--pid", type=int, default=None, help="server pid for RSS with --url")
    p.add_argument("--pipelines", default="1,2", help="comma list: one server run per pool size")
    p.add_argument("--http-threads", type=int, default=8, help="server HTTP threads (fer-edge serve --http-threads)")
    p.add_argument("--threads", type=int, default=None,
                   help="interpreter threads per model (fer-edge serve --threads; default: the server's)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients")
    p.add_argument("--duration-s", type=float, default=60.0, help="measured seconds per run")
    p.add_argument("--warmup-s", type=float, default=5.0, help="unmeasured seconds before each run")
    p.add_argument("--image", default=None, help="image file to post (default: a FER-2013 face on a 640x480 background)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="FER-2013 folder for the default image")
    p.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON")
    args = p.parse_args(argv)

    data = Path(args.image).read_bytes() if args.image else face_image_jpeg(Path(args.data))
    body, content_type = multipart(data)
    results: list[LoadResult] = []
    common = dict(clients=args.clients, duration_s=args.duration_s, warmup_s=args.warmup_s)
    if args.url:
        results.append(run_load(args.url.rstrip("/"), body, content_type, token=args.token, pid=args.pid,
                                pipelines=None, server_threads=None, **common))
    else:
        extra = ["--threads", str(args.threads)] if args.threads else []
        for n in [int(v) for v in args.pipelines.split(",") if v.strip()]:
            proc, url = start_server(n, args.http_threads, extra)
            try:
                print(f"pipelines={n}: {args.clients} clients for {args.duration_s:g} s against {url} ...",
                      file=sys.stderr, flush=True)
                results.append(run_load(url, body, content_type, token=None, pid=proc.pid, pipelines=n,
                                        server_threads=args.http_threads, **common))
            finally:
                stop_server(proc)
    cpu = os.cpu_count()
    print(f"\nfer-edge serve load: {args.clients} clients, {args.duration_s:g} s, image {len(data)} bytes, "
          f"{cpu} CPUs")
    print(f"{'pipelines':>9} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'RSS before':>10} {'RSS after':>9}")
    for r in results:
        print(f"{r.pipelines if r.pipelines is not None else 'ext':>9} {r.requests:>8} {r.rps:>7.2f} "
              f"{r.p50_ms:>8.1f} {r.p95_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>6} "
              f"{(r.rss_before_mb or float('nan')):>8.1f}MB {(r.rss_after_mb or float('nan')):>7.1f}MB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"image_bytes": len(data), "cpus": cpu,
                                               "results": [asdict(r) for r in results]}, indent=2) + "\n")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
