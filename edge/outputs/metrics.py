"""Prometheus metrics of a frame loop: `fer-edge run --metrics-port N` and `fer-edge serve`'s /metrics.

    metrics = Metrics(labels, model_path, detector="blazeface short")
    metrics.capture_stats = lambda: capture.stats        # drops, skipped, reconnects (read at scrape time)
    metrics.serve(port=9101)                              # GET /metrics on its own HTTP thread
    metrics.write(result)                                 # a Sink: per processed frame
    metrics.close()                                       # stops that server
    metrics.text()                                        # the exposition text (serve's /metrics)

Each Metrics has its own registry, so a test or a second server never sees another's counters.
Exposed (all names start with fer_edge_):
- frames_total, faces_total; fps (frames/s over the last FPS_WINDOW frames, 0 when idle);
- stage_latency_seconds{stage} histograms (detect, preprocess, classify, track, total);
- faces_per_frame histogram; emotion_total{emotion} (faces shown with each label);
- capture_dropped_frames_total, capture_skipped_frames_total, camera_reconnects_total;
- model_info{model, sha256, detector} (the emotion model file's sha256);
- cpu_temperature_celsius, where the OS exposes it (/sys/class/thermal);
- mqtt_* when the run publishes over MQTT (edge.outputs.mqtt.MqttStats).
`write` costs a few counter increments per frame; everything computed reads at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from edge.atomic import sha256_file
from edge.loop import STAGES
from edge.types import FrameResult

CONTENT_TYPE = CONTENT_TYPE_LATEST  # of `text()`
FPS_WINDOW = 64  # frames over which fps is measured
IDLE_S = 2.0  # no frame for this long: fps reads 0
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)
FACES_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
THERMAL_ROOT = Path("/sys/class/thermal")
# Zone types that are the CPU itself (Raspberry Pi: cpu-thermal; x86: x86_pkg_temp); else the first zone.
CPU_ZONE_HINTS = ("cpu", "x86_pkg", "soc", "core")


def cpu_temperature_c(root: Path = THERMAL_ROOT) -> float | None:
    """The CPU's temperature in °C from the kernel's thermal zones, or None where there are none."""
    zones = sorted(root.glob("thermal_zone*"), key=lambda p: (len(p.name), p.name))
    readings = []
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip().lower()
            millideg = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        readings.append((kind, millideg / 1000.0))
    for kind, celsius in readings:
        if any(hint in kind for hint in CPU_ZONE_HINTS):
            return celsius
    return readings[0][1] if readings else None


class _Computed:
    """The values read at scrape time: capture counters, CPU temperature, MQTT."""

    def __init__(self, owner: "Metrics"):
        self._owner = owner

    def describe(self):
        return []

    def collect(self):
        owner = self._owner
        stats = owner.capture_stats() if owner.capture_stats is not None else None
        for name, attr, text in (("capture_dropped_frames", "drops", "live frames overwritten before processing"),
                                 ("capture_skipped_frames", "skipped", "corrupt or empty frames skipped"),
                                 ("camera_reconnects", "reconnects", "source reopened after a failure")):
            yield CounterMetricFamily(f"fer_edge_{name}", text, value=float(getattr(stats, attr, 0) if stats else 0))
        celsius = cpu_temperature_c(owner.thermal_root)
        if celsius is not None:
            yield GaugeMetricFamily("fer_edge_cpu_temperature_celsius", "CPU temperature", value=celsius)
        mqtt = owner.mqtt_stats() if owner.mqtt_stats is not None else None
        if mqtt is not None:
            yield GaugeMetricFamily("fer_edge_mqtt_connected", "1 while connected to the MQTT broker",
                                    value=float(mqtt.connected))
            yield GaugeMetricFamily("fer_edge_mqtt_queued_messages", "messages waiting for the broker",
                                    value=float(mqtt.queued))
            for name, value, text in (("mqtt_published_messages", mqtt.published, "messages handed to the broker"),
                                      ("mqtt_events", mqtt.events, "presence events raised"),
                                      ("mqtt_dropped_messages", mqtt.dropped, "frame messages dropped"),
                                      ("mqtt_dropped_events", mqtt.events_dropped, "events dropped (queue full)"),
                                      ("mqtt_reconnects", mqtt.reconnects, "connections after the first")):
                yield CounterMetricFamily(f"fer_edge_{name}", text, value=float(value))


class Metrics:
    """The registry of one frame loop; a Sink (`write(result)`, `close()`)."""

    def __init__(self, labels: tuple[str, ...], model_path: str | Path, *, detector: str = ""):
        self.registry = CollectorRegistry()
        self.capture_stats: Callable[[], object] | None = None  # -> an edge.capture.thread.CaptureStats or None
        self.mqtt_stats: Callable[[], object] | None = None  # -> an edge.outputs.mqtt.MqttStats or None
        self.thermal_root = THERMAL_ROOT
        r = self.registry
        self._frames = Counter("fer_edge_frames", "processed frames", registry=r)
        self._faces = Counter("fer_edge_faces", "faces found", registry=r)
        latency = Histogram("fer_edge_stage_latency_seconds", "time per frame in each pipeline stage",
                            ["stage"], buckets=LATENCY_BUCKETS_S, registry=r)
        self._latency = [latency.labels(stage) for stage in STAGES]
        self._faces_per_frame = Histogram("fer_edge_faces_per_frame", "faces found per processed frame",
                                          buckets=FACES_BUCKETS, registry=r)
        emotion = Counter("fer_edge_emotion", "faces shown with each label", ["emotion"], registry=r)
        self._emotion = [emotion.labels(label) for label in labels]
        self._times: deque[float] = deque(maxlen=FPS_WINDOW)
        Gauge("fer_edge_fps", f"processed frames per second over the last {FPS_WINDOW} frames",
              registry=r).set_function(self.fps)
        path = Path(model_path)
        Info("fer_edge_model", "the emotion model", registry=r).info(
            {"model": path.name, "sha256": sha256_file(path) if path.is_file() else "", "detector": detector})
        r.register(_Computed(self))
        self._server: MetricsServer | None = None

    def serve(self, port: int, host: str = "") -> int:
        """Serve GET /metrics on `port` (0: any free one) until close(); the port. OSError when it is taken."""
        if self._server is None:
            self._server = MetricsServer(self, port, host)
        return self._server.port

    def write(self, result: FrameResult) -> None:
        t = result.timings
        for child, ms in zip(self._latency, (t.detect_ms, t.preprocess_ms, t.classify_ms, t.track_ms, t.total_ms)):
            child.observe(ms / 1000.0)
        n = len(result.faces)
        self._frames.inc()
        if n:
            self._faces.inc(n)
            for k in result.label_index:
                self._emotion[int(k)].inc()
        self._faces_per_frame.observe(n)
        self._times.append(time.monotonic())

    def fps(self) -> float:
        times = list(self._times)
        if len(times) < 2 or time.monotonic() - times[-1] > IDLE_S:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-9)

    content_type = CONTENT_TYPE  # of text()

    def text(self) -> bytes:
        """The Prometheus text exposition of everything above."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Stop the HTTP server, if serve() started one; counters need no flushing."""
        if self._server is not None:
            self._server.close()
            self._server = None


class MetricsServer:
    """GET /metrics of `metrics` on its own HTTP thread until close(). OSError when the port is taken."""

    def __init__(self, metrics: Metrics, port: int, host: str = ""):
        from prometheus_client import start_http_server

        self._server, self._thread = start_http_server(port, addr=host or "0.0.0.0", registry=metrics.registry)
        self.port = int(self._server.server_port)
        self._closed = threading.Event()

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
