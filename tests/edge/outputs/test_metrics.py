"""Prometheus metrics: `fer-edge run --metrics-port` scraped over HTTP mid-run and parsed with prometheus_client's own parser."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client", reason="needs prometheus-client: pip install '.[metrics]'")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from edge.atomic import sha256_file  # noqa: E402
from edge.cli import build_parser  # noqa: E402
from edge.cli import main as cli_main  # noqa: E402
from edge.labels import LABELS  # noqa: E402
from edge.outputs.metrics import cpu_temperature_c  # noqa: E402
from edge.cli.run import RunConfig, run  # noqa: E402
from mqtt_helpers import free_port, presence_video  # noqa: E402


@pytest.fixture(scope="module")
def people_video(tmp_path_factory, faces_dir, detector_dir) -> Path:
    """The video the runs read; they need the face detector, so they skip without one (detector_dir)."""
    return presence_video(tmp_path_factory.mktemp("metrics-video") / "people.mp4", faces_dir)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics as {(name, sorted labels): value}, parsed by prometheus_client."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_scrape_mid_run_parses_and_the_counters_move(people_video, tmp_path, emotion_model):
    port = free_port()
    scrapes = []

    def on_frame(result):
        if result.frame.index in (20, 120):
            scrapes.append(scrape(port))

    argv = ["run", "--source", str(people_video), "--headless", "--jsonl", str(tmp_path / "r.jsonl"),
            "--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
    assert run(RunConfig.from_args(build_parser().parse_args(argv)), on_frame=on_frame) == 0
    first, second = scrapes
    for sample in (first, second):
        model = [labels for (name, labels), _ in sample.items() if name == "fer_edge_model_info"]
        assert model == [(("detector", "blazeface short"), ("model", emotion_model.name),
                          ("sha256", sha256_file(emotion_model)))]
    frames = [s[("fer_edge_frames_total", ())] for s in scrapes]
    assert frames == [21.0, 121.0]  # written before on_frame: frames 0..20, then 0..120
    assert second[("fer_edge_fps", ())] > 0
    for stage in ("detect", "preprocess", "classify", "track", "total"):
        key = ("fer_edge_stage_latency_seconds_count", (("stage", stage),))
        assert (first[key], second[key]) == (21.0, 121.0)
        assert second[("fer_edge_stage_latency_seconds_sum", (("stage", stage),))] > 0
    emotions = {label: second[("fer_edge_emotion_total", (("emotion", label),))] for label in LABELS}
    faces = second[("fer_edge_faces_total", ())]
    assert sum(emotions.values()) == faces > sum(first[("fer_edge_emotion_total", (("emotion", lb),))]
                                                 for lb in LABELS)
    assert second[("fer_edge_faces_per_frame_count", ())] == 121.0
    assert second[("fer_edge_faces_per_frame_sum", ())] == faces
    for name in ("fer_edge_capture_dropped_frames_total", "fer_edge_camera_reconnects_total",
                 "fer_edge_capture_skipped_frames_total"):
        assert second[(name, ())] == 0.0  # a file delivers every frame
    # The server went away with the run.
    with pytest.raises(OSError):
        scrape(port)


def test_a_taken_metrics_port_is_a_clear_error(people_video, tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc = cli_main(["run", "--source", str(people_video), "--headless", "--jsonl", str(tmp_path / "r.jsonl"),
                       "--metrics-port", str(port), "--metrics-host", "127.0.0.1"])
    err = capsys.readouterr().err
    assert rc == 2 and f"--metrics-port {port}: cannot listen" in err and "Traceback" not in err, err


@pytest.mark.parametrize("zones, want", [
    ({}, None),
    ({"thermal_zone0": ("cpu-thermal", "47236")}, 47.236),  # a Raspberry Pi
    ({"thermal_zone0": ("acpitz", "30000"), "thermal_zone1": ("x86_pkg_temp", "52000")}, 52.0),
    ({"thermal_zone0": ("acpitz", "30000"), "thermal_zone1": ("iwlwifi_1", "41000")}, 30.0),
    ({"thermal_zone0": ("cpu-thermal", "not a number"), "thermal_zone1": ("gpu", "40000")}, 40.0),
])
def test_cpu_temperature_reads_the_kernels_thermal_zones(zones, want, tmp_path):
    for name, (kind, temp) in zones.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "type").write_text(kind + "\n")
        (tmp_path / name / "temp").write_text(temp + "\n")
    assert cpu_temperature_c(tmp_path) == want


def test_temperature_and_mqtt_figures_appear_where_they_exist(tmp_path, emotion_model):
    from edge.outputs.metrics import Metrics
    from edge.outputs.mqtt import MqttStats

    metrics = Metrics(LABELS, emotion_model)
    metrics.thermal_root = tmp_path / "none"

    def samples():
        return {s.name: s.value for f in text_string_to_metric_families(metrics.text().decode()) for s in f.samples}

    assert not any(name.startswith(("fer_edge_cpu_temperature", "fer_edge_mqtt")) for name in samples())
    (tmp_path / "zone" / "thermal_zone0").mkdir(parents=True)
    (tmp_path / "zone" / "thermal_zone0" / "type").write_text("cpu-thermal\n")
    (tmp_path / "zone" / "thermal_zone0" / "temp").write_text("61500\n")
    metrics.thermal_root = tmp_path / "zone"
    metrics.mqtt_stats = lambda: MqttStats(connected=False, published=40, events=3, dropped=7, events_dropped=0,
                                           queued=12, reconnects=1)
    got = samples()
    assert got["fer_edge_cpu_temperature_celsius"] == 61.5
    assert (got["fer_edge_mqtt_connected"], got["fer_edge_mqtt_published_messages_total"],
            got["fer_edge_mqtt_dropped_messages_total"], got["fer_edge_mqtt_queued_messages"],
            got["fer_edge_mqtt_reconnects_total"]) == (0.0, 40.0, 7.0, 12.0, 1.0)
