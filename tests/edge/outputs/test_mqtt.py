"""`fer-edge run --mqtt` against a real broker (Debian's mosquitto, started per test on a free port).

A real video written by OpenCV goes through the real pipeline; a paho subscriber checks what
arrives: the faces (the JSONL record itself), the events, the retained state and status, Home
Assistant discovery. The broker is killed mid-run and restarted: no event is lost and frames keep
being processed while it is away.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="needs paho-mqtt: pip install '.[mqtt]'")

from edge.cli import build_parser  # noqa: E402
from edge.cli import main as cli_main  # noqa: E402
from edge.cli.run import RunConfig, run  # noqa: E402
from mqtt_helpers import GUARD_S, Broker, Subscriber, free_port, presence_video, retained, wait_for  # noqa: E402

PREFIX, DEVICE = "home", "cam1"
MAX_MISSED, MAX_AGE_S = 10, 2.0  # the tracker's defaults (PipelineConfig), which the events follow


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def people_video(tmp_path_factory, faces_dir, detector_dir) -> Path:
    """The video the runs read; they need the face detector, so they skip without one (detector_dir)."""
    return presence_video(tmp_path_factory.mktemp("mqtt-video") / "people.mp4", faces_dir)


def _config(argv: list[str]) -> RunConfig:
    return RunConfig.from_args(build_parser().parse_args(["run", *argv]))


def _records(jsonl: Path) -> list[dict]:
    return [json.loads(line) for line in jsonl.read_text().splitlines()]


def expected_events(records: list[dict]) -> list[tuple]:
    """(event, id, emotion, frame) as the JSONL shows them: a new id appears, its label changes, and it
    leaves once missing for more than MAX_MISSED frames and MAX_AGE_S seconds."""
    out, people = [], {}  # id -> (label, last frame, last t)
    for rec in records:
        present = set()
        for face in rec["faces"]:
            fid, label = face["id"], face["emotion"]
            present.add(fid)
            if fid not in people:
                out.append(("appear", fid, label, rec["frame"]))
            elif people[fid][0] != label:
                out.append(("change", fid, label, rec["frame"]))
            people[fid] = (label, rec["frame"], rec["t"])
        for fid in [k for k in people if k not in present]:
            label, frame, t = people[fid]
            if rec["frame"] - frame > MAX_MISSED and rec["t"] - t > MAX_AGE_S:
                out.append(("leave", fid, label, rec["frame"]))
                del people[fid]
    return out


def _received(sub: Subscriber) -> list[dict]:
    """Events by seq, each once (QoS 1 is at-least-once: a message resent after a reconnect may come twice)."""
    by_seq = {e["seq"]: e for e in sub.json("/events")}
    return [by_seq[k] for k in sorted(by_seq)]


def test_a_run_publishes_faces_events_state_and_retained_status(broker, people_video, tmp_path):
    jsonl = tmp_path / "run.jsonl"
    sub = Subscriber(broker.port, [f"{PREFIX}/{DEVICE}/#", "homeassistant/#"])
    online_during_run = []

    def on_frame(result):
        if result.frame.index == 30:  # a subscriber that comes later gets "online" from the broker
            online_during_run.append(retained(broker.port, f"{PREFIX}/{DEVICE}/status"))

    config = _config(["--source", str(people_video), "--headless", "--jsonl", str(jsonl), "--mqtt",
                      f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "--mqtt-device", DEVICE, "--mqtt-ha"])
    try:
        assert run(config, on_frame=on_frame) == 0
        records = _records(jsonl)
        want = expected_events(records)
        kinds = [e[0] for e in want]  # one person appears, changes, leaves; then another appears
        assert kinds[0] == "appear" and "change" in kinds and kinds[-2:] == ["leave", "appear"], want
        wait_for(lambda: len(_received(sub)) >= len(want) and sub.payloads("/status")[-1:] == [b"offline"],
                 "the events and the offline status")
        wait_for(lambda: len(sub.payloads("/faces")) >= len(records), "a faces message per frame")
    finally:
        sub.close()
    # Faces: the JSONL record of each frame, byte for byte once parsed.
    assert sub.json("/faces") == records
    events = _received(sub)
    assert [(e["event"], e["id"], e["emotion"], e["frame"]) for e in events] == want
    assert [e["seq"] for e in events] == list(range(len(want)))
    assert all(isinstance(e["ts"], float) for e in events) and "box" in events[0] and "seen_s" in events[-2]
    # Status: online while running (retained), offline at the end (retained), and so was the state.
    assert sub.payloads("/status")[0] == b"online" and online_during_run == [b"online"]
    assert retained(broker.port, f"{PREFIX}/{DEVICE}/status") == b"offline"
    last = records[-1]["faces"]
    assert json.loads(retained(broker.port, f"{PREFIX}/{DEVICE}/state")) == {
        "faces": len(last), "emotion": last[0]["emotion"] if last else "none"}
    # Home Assistant discovery: two sensors of one device, reading the state topic.
    discovery = {t: json.loads(p) for t, p, _ in sub.messages if t.startswith("homeassistant/")}
    assert set(discovery) == {"homeassistant/sensor/fer_edge_cam1/emotion/config",
                              "homeassistant/sensor/fer_edge_cam1/faces/config"}
    for sensor in discovery.values():
        assert sensor["state_topic"] == f"{PREFIX}/{DEVICE}/state"
        assert sensor["availability_topic"] == f"{PREFIX}/{DEVICE}/status"
        assert sensor["device"]["identifiers"] == ["fer_edge_cam1"]


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_a_broker_outage_loses_no_event_and_never_stalls_the_frames(broker, people_video, tmp_path):
    """Killed (SIGKILL) once the first person has appeared, back after they have changed and left."""
    jsonl = tmp_path / "run.jsonl"
    sub = Subscriber(broker.port, [f"{PREFIX}/{DEVICE}/events", f"{PREFIX}/{DEVICE}/status"])
    warnings = _Warnings()
    logging.getLogger("edge.outputs.mqtt").addHandler(warnings)
    outage = {"killed_at": None, "noticed_at": None, "back_at": None}

    def on_frame(result):
        index = result.frame.index
        if outage["killed_at"] is None and result.track_ids.size:
            wait_for(lambda: len(sub.payloads("/events")) >= 1, "the first appear event")
            broker.kill()
            outage["killed_at"] = index
            # The sink's own word that the connection is gone: every later frame runs without a broker.
            wait_for(lambda: any("lost the connection" in line for line in warnings.lines),
                     "the lost-connection warning")
            outage["noticed_at"] = index + 1
        elif outage["noticed_at"] is not None and outage["back_at"] is None and index >= 135:
            broker.start()
            outage["back_at"] = index

    config = _config(["--source", str(people_video), "--headless", "--jsonl", str(jsonl), "--mqtt",
                      f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "--mqtt-device", DEVICE])
    # Time to reconnect before the run ends: the backoff may be waiting out its longest step.
    config = replace(config, mqtt=replace(config.mqtt, flush_s=GUARD_S))
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(run(config, on_frame=on_frame)))
    try:
        worker.start()
        worker.join(GUARD_S * 5)
        assert not worker.is_alive(), "the run stalled"
        assert done == [0]
        records = _records(jsonl)
        want = expected_events(records)
        wait_for(lambda: len(_received(sub)) >= len(want), f"{len(want)} events")
    finally:
        logging.getLogger("edge.outputs.mqtt").removeHandler(warnings)
        sub.close()
    killed, noticed, back = outage["killed_at"], outage["noticed_at"], outage["back_at"]
    assert killed is not None and noticed is not None and back is not None, outage
    # Frames went on while the broker was away, the events raised then among them.
    assert len(records) == records[-1]["frame"] + 1 == 175
    during = [e for e in want if noticed <= e[3] < back]
    assert back - noticed > 0 and {e[0] for e in during} >= {"change", "leave"}, (outage, want)
    events = _received(sub)
    assert [(e["event"], e["id"], e["emotion"], e["frame"]) for e in events] == want
    assert [e["seq"] for e in events] == list(range(len(want)))
    assert any("connected to" in line and "without it" in line for line in warnings.lines), warnings.lines
    assert retained(broker.port, f"{PREFIX}/{DEVICE}/status") == b"offline"


def test_faces_every_s_throttles_frame_messages_by_frame_time(broker, people_video, tmp_path):
    sub = Subscriber(broker.port, [f"{PREFIX}/{DEVICE}/faces", f"{PREFIX}/{DEVICE}/status"])
    try:
        rc = cli_main(["run", "--source", str(people_video), "--headless", "--jsonl", str(tmp_path / "r.jsonl"),
                       "--mqtt", f"mqtt://127.0.0.1:{broker.port}/{PREFIX}", "--mqtt-device", DEVICE,
                       "--mqtt-every-s", "2", "--mqtt-faces-qos", "1"])
        assert rc == 0
        wait_for(lambda: sub.payloads("/status")[-1:] == [b"offline"], "the offline status")
    finally:
        sub.close()
    # 175 frames at 15 frames/s: frame times 0 .. 11.6 s, so one message per 2 s of video: t = 0, 2, 4 ... 10.
    times = [r["t"] for r in sub.json("/faces")]
    assert len(times) == 6 and times[0] == 0.0 and all(b - a >= 2.0 - 1e-6 for a, b in zip(times, times[1:]))


def test_an_unreachable_broker_is_a_warning_and_the_run_goes_on(people_video, tmp_path, caplog):
    jsonl = tmp_path / "r.jsonl"
    port = free_port()  # nothing listens there
    with caplog.at_level(logging.INFO, logger="edge.outputs.mqtt"):
        rc = cli_main(["run", "--source", str(people_video), "--headless", "--jsonl", str(jsonl),
                       "--mqtt", f"mqtt://127.0.0.1:{port}/{PREFIX}", "--mqtt-device", DEVICE, "--mqtt-queue", "10"])
    assert rc == 0
    records = _records(jsonl)
    assert len(records) == 175  # every frame processed
    # The frame queue kept its newest 10 and counted the rest; every event was kept (and is reported undelivered).
    n_events = len(expected_events(records))
    assert f"{n_events} events could not be delivered" in caplog.text
    assert f"0 messages published, {n_events} events, 165 frame messages dropped" in caplog.text
    text = caplog.text
    assert f"cannot connect to the MQTT broker at mqtt://127.0.0.1:{port} (connection refused" in text
    assert "the run goes on" in text
    assert "events could not be delivered" in text  # said at the end, not silently dropped


MALFORMED = {
    "not mqtt": (["--mqtt", "http://broker.local/x"], "must start with mqtt:// or mqtts://"),
    "no host": (["--mqtt", "mqtt:///prefix"], "no broker host"),
    "bad port": (["--mqtt", "mqtt://broker.local:99999/x"], "--mqtt 'mqtt://broker.local:99999/x'"),
    "port not a number": (["--mqtt", "mqtt://broker.local:abc/x"], "write it as mqtt://"),
    "wildcard in prefix": (["--mqtt", "mqtt://broker.local/home/#"], "wildcards"),
    "password on the command line": (["--mqtt", "mqtt://cam:s3cret@broker.local/x"], "FER_EDGE_MQTT_PASSWORD"),
    "ca without tls": (["--mqtt", "mqtt://broker.local/x", "--mqtt-ca", "ca.pem"], "mqtts://"),
    "missing ca file": (["--mqtt", "mqtts://broker.local/x", "--mqtt-ca", "/nonexistent/ca.pem"], "no such file"),
    "bad device": (["--mqtt", "mqtt://broker.local/x", "--mqtt-device", "my cam"], "--mqtt-device"),
    "flag without --mqtt": (["--mqtt-ha"], "--mqtt-ha needs --mqtt"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_mqtt_flag_is_a_clear_error_before_any_work(case, people_video, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FER_EDGE_MQTT_URL", raising=False)
    argv, needle = MALFORMED[case]
    jsonl = tmp_path / "r.jsonl"
    rc = cli_main(["run", "--source", str(people_video), "--headless", "--jsonl", str(jsonl), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and "fer-edge run: error:" in err and needle in err, err
    assert "Traceback" not in err and "frames " not in err and not jsonl.exists()  # nothing ran
    assert "s3cret" not in err


def test_credentials_come_from_the_environment(tmp_path, people_video, monkeypatch, caplog):
    """A broker that requires a password: the one in $FER_EDGE_MQTT_PASSWORD gets in, a wrong one is a warning."""
    import subprocess

    folder = tmp_path / "auth"
    folder.mkdir()
    passwd = folder / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "cam", "right-one"], check=True,
                   capture_output=True)
    b = Broker(folder, extra=f"allow_anonymous false\npassword_file {passwd}\n").start()
    try:
        sub_ok = []
        for password in ("right-one", "wrong-one"):
            monkeypatch.setenv("FER_EDGE_MQTT_USERNAME", "cam")
            monkeypatch.setenv("FER_EDGE_MQTT_PASSWORD", password)
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="edge.outputs.mqtt"):
                rc = cli_main(["run", "--source", str(people_video), "--headless", "--jsonl",
                               str(tmp_path / f"{password}.jsonl"), "--mqtt", f"mqtt://127.0.0.1:{b.port}/{PREFIX}",
                               "--mqtt-device", DEVICE])
            assert rc == 0
            sub_ok.append("connected to" in caplog.text)
            assert password not in caplog.text
        assert sub_ok == [True, False]
        assert "the broker refused" in caplog.text and "FER_EDGE_MQTT_PASSWORD" in caplog.text
    finally:
        b.stop()


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it, made with the openssl command."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command: apt-get install openssl")
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run_ssl = lambda *a: subprocess.run(["openssl", *map(str, a)], check=True, capture_output=True)  # noqa: E731
    run_ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
            "-subj", "/CN=fer-edge test CA")
    run_ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run_ssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
            "-extfile", folder / "san.ext")
    return ca, cert, key


def test_mqtts_with_a_private_ca(tmp_path, people_video, caplog):
    """TLS to a broker whose certificate a private CA signed: trusted with --mqtt-ca, refused without."""
    folder = tmp_path / "tls"
    folder.mkdir()
    ca, cert, key = _tls_files(folder)
    tls_port = free_port()
    b = Broker(folder, extra=f"allow_anonymous true\nlistener {tls_port} 127.0.0.1\n"
                             f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n").start()
    sub = Subscriber(b.port, [f"{PREFIX}/{DEVICE}/status"])  # the plain listener sees what comes in over TLS
    try:
        for ca_args, connects in ((["--mqtt-ca", str(ca)], True), ([], False)):
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="edge.outputs.mqtt"):
                rc = cli_main(["run", "--source", str(people_video), "--headless", "--jsonl", str(tmp_path / "r.jsonl"),
                               "--mqtt", f"mqtts://127.0.0.1:{tls_port}/{PREFIX}", "--mqtt-device", DEVICE, *ca_args])
            assert rc == 0
            assert (f"connected to mqtts://127.0.0.1:{tls_port}" in caplog.text) == connects, caplog.text
        assert "certificate verify failed" in caplog.text  # the second run: the system's CAs do not know ours
        wait_for(lambda: sub.payloads("/status")[:2] == [b"online", b"offline"], "the TLS run's status")
    finally:
        sub.close()
        b.stop()
