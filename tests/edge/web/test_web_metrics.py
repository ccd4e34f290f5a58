"""`fer-edge serve` exposes the live stream's Prometheus metrics at /metrics (a real server in a subprocess)."""

from __future__ import annotations

import http.client
import json
import time

import pytest

pytest.importorskip("prometheus_client", reason="needs prometheus-client: pip install '.[web]'")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from edge.atomic import sha256_file  # noqa: E402
from web_helpers import start_server, write_video  # noqa: E402

TOKEN = "metrics-token"
GUARD_S = 120.0  # a hang guard, not a measurement


def _samples(body: bytes) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def test_metrics_of_the_live_stream_parse_and_move(tmp_path, fer_faces, emotion_model, detector_dir):
    video = write_video(tmp_path / "live.avi", fer_faces, n_frames=60)  # 6 s at its own 10 frames/s
    srv = start_server("--token", TOKEN, "--source", str(video), "--http-threads", "4")
    try:
        status, _, body = srv.get("/metrics")
        assert status == 401 and b"token" in body  # the token guards it as it guards the API
        # A file source plays once someone watches it: one MJPEG viewer, held open meanwhile.
        host, port = srv.url[len("http://"):].rsplit(":", 1)
        viewer = http.client.HTTPConnection(host, int(port), timeout=GUARD_S)
        viewer.request("GET", f"/stream.mjpg?token={TOKEN}")
        assert viewer.getresponse().status == 200
        seen = []
        deadline = time.monotonic() + GUARD_S
        while time.monotonic() < deadline and (len(seen) < 2 or seen[-1] <= seen[0]):
            status, headers, body = srv.get("/metrics", TOKEN)
            assert status == 200 and headers["Content-Type"].startswith("text/plain"), (status, body[:200])
            samples = _samples(body)
            frames = samples[("fer_edge_frames_total", ())]
            if frames > 0:
                seen.append(frames)
            time.sleep(0.2)
        assert len(seen) >= 2 and seen[-1] > seen[0], seen
        # Exact sums once the source has ended (mid-frame, a scrape may catch one stage counted before another).
        deadline = time.monotonic() + GUARD_S
        while json.loads(srv.get("/api/stats", TOKEN)[2])["live"]["state"] != "ended":
            assert time.monotonic() < deadline, "the live source never ended"
            time.sleep(0.2)
        samples = _samples(srv.get("/metrics", TOKEN)[2])
        frames = samples[("fer_edge_frames_total", ())]
        info = [dict(labels) for (name, labels), _ in samples.items() if name == "fer_edge_model_info"]
        assert info == [{"model": emotion_model.name, "sha256": sha256_file(emotion_model),
                         "detector": "blazeface short"}]
        assert samples[("fer_edge_stage_latency_seconds_count", (("stage", "total"),))] == frames
        assert sum(v for (name, _), v in samples.items() if name == "fer_edge_emotion_total") == \
            samples[("fer_edge_faces_total", ())] > 0
        assert ("fer_edge_capture_dropped_frames_total", ()) in samples
    finally:
        assert srv.stop() == 0, srv.output
