"""deploy/fer-edge.service and deploy/fer-edge.logrotate: systemd accepts the unit, its command is a
valid headless `fer-edge run`, and logrotate really rotates the JSONL under a running writer."""

from __future__ import annotations

import gzip
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.cli import build_parser
from edge.cli.run import RunConfig
from edge.outputs.sinks import JsonlSink

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "fer-edge.service"
LOGROTATE = REPO / "deploy" / "fer-edge.logrotate"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def unit_entries() -> dict[str, list[str]]:
    """Key -> values, continuation lines joined, comments dropped (systemd's own syntax)."""
    entries: dict[str, list[str]] = {}
    logical = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line[0] in "#;" or line.startswith("[")):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        key, _, value = logical.partition("=")
        entries.setdefault(key.strip(), []).append(value.strip())
        logical = ""
    return entries


def exec_start() -> list[str]:
    return shlex.split(unit_entries()["ExecStart"][0])


def test_systemd_analyze_verify_is_clean(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None or not (SYSTEM_UNITS / "multi-user.target").is_file():
        pytest.skip("systemd-analyze and systemd's units are needed (apt-get install systemd)")
    # A root holding systemd's units, the unit where the README puts it, and an executable at the
    # unit's ExecStart path (verify checks that it exists; on a Pi the venv puts it there).
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/fer-edge.service")
    exe = root / exec_start()[0].lstrip("/")
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    res = subprocess.run([analyze, "verify", f"--root={root}", "fer-edge.service"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout + res.stderr == "", res.stdout + res.stderr
    # The check has teeth: a wrong directive and a missing executable are both reported.
    (root / "etc/systemd/system/fer-edge.service").write_text(UNIT.read_text().replace(
        "Restart=on-failure", "Restart=sometimes"))
    exe.unlink()
    res = subprocess.run([analyze, "verify", f"--root={root}", "fer-edge.service"],
                         capture_output=True, text=True, timeout=120)
    assert "restart specifier" in res.stderr and "is not executable" in res.stderr


def test_unit_runs_a_non_root_user_in_the_video_group_restarts_and_logs_to_the_journal():
    e = unit_entries()
    assert e.get("DynamicUser") == ["yes"] or e.get("User", ["root"])[0] not in ("root", "0")
    assert "video" in " ".join(e["SupplementaryGroups"]).split()
    assert e["Restart"] == ["on-failure"] and float(e["RestartSec"][0]) > 0
    assert e["StandardOutput"] == ["journal"] and e["StandardError"] == ["journal"]
    assert e["WantedBy"] == ["multi-user.target"]


def test_exec_start_is_a_valid_headless_run_appending_jsonl_in_the_logs_directory():
    argv = exec_start()
    assert argv[0].endswith("/bin/fer-edge")
    cfg = RunConfig.from_args(build_parser().parse_args(argv[1:]))
    logs_dir = unit_entries()["LogsDirectory"][0]
    assert cfg.headless and cfg.append and cfg.stats_interval_s > 0
    assert cfg.jsonl == f"/var/log/{logs_dir}/faces.jsonl"
    assert cfg.source == "picamera2" and cfg.width and cfg.height
    # The logrotate file rotates exactly that file.
    assert LOGROTATE.read_text().count(cfg.jsonl + " {") == 1


def test_logrotate_copytruncate_rotates_the_jsonl_under_a_running_writer(tmp_path):
    logrotate = shutil.which("logrotate") or shutil.which("/usr/sbin/logrotate")
    if logrotate is None:
        pytest.skip("logrotate is not installed (apt-get install logrotate)")
    jsonl = tmp_path / "faces.jsonl"
    conf = tmp_path / "fer-edge.logrotate"
    conf.write_text(LOGROTATE.read_text().replace(exec_start_jsonl(), str(jsonl)))
    conf.chmod(0o644)
    state = tmp_path / "state"
    with JsonlSink(jsonl, append=True) as sink:  # as `fer-edge run --append` keeps it open
        for i in range(100):
            sink.write_record({"frame": i, "faces": []})
        for _ in range(2):  # the second rotation compresses the first (delaycompress)
            res = subprocess.run([logrotate, "--force", "--state", str(state), str(conf)],
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, res.stderr
            sink.write_record({"frame": 100, "faces": []})
        sink.write_record({"frame": 101, "faces": []})
    live = jsonl.read_bytes()
    # O_APPEND: after the truncation the writer starts again at the top, with no hole of NULs.
    assert b"\0" not in live
    assert [json.loads(line)["frame"] for line in live.decode().splitlines()] == [100, 101]
    assert [json.loads(line)["frame"] for line in (tmp_path / "faces.jsonl.1").read_text().splitlines()] == [100]
    with gzip.open(tmp_path / "faces.jsonl.2.gz", "rt") as f:
        assert [json.loads(line)["frame"] for line in f.read().splitlines()] == list(range(100))


def exec_start_jsonl() -> str:
    argv = exec_start()
    return argv[argv.index("--jsonl") + 1]


ENV_EXAMPLE = REPO / "deploy" / "fer-edge.env"


def _env_forms() -> list[dict[str, str]]:
    """The example environment file's commented forms, each uncommented and filled in, as systemd reads them."""
    forms, current = [], {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith("#FER_EDGE_"):
            key, _, value = line[1:].partition("=")
            current[key] = value.replace("CHANGE-ME", "s3cret")
        elif current and not line.strip():
            forms.append(current)
            current = {}
    return forms + ([current] if current else [])


def test_the_unit_reports_metrics_and_takes_mqtt_credentials_from_its_environment_file(monkeypatch):
    e = unit_entries()
    assert e["EnvironmentFile"] == ["-/etc/fer-edge/fer-edge.env"]  # optional: no file, no MQTT
    argv = exec_start()
    assert not any("mqtt://" in a or "mqtts://" in a for a in argv)  # no broker, let alone a password, in `ps`
    for key in ("FER_EDGE_MQTT_URL", "FER_EDGE_MQTT_USERNAME", "FER_EDGE_MQTT_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    cfg = RunConfig.from_args(build_parser().parse_args(argv[1:]))
    assert cfg.metrics_port == 9101 and cfg.mqtt is None
    forms = _env_forms()
    assert len(forms) == 2
    for form in forms:
        for key, value in form.items():
            monkeypatch.setenv(key, value)
        cfg = RunConfig.from_args(build_parser().parse_args(argv[1:]))
        assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.prefix) == ("broker.local", 1883, "home")
        assert (cfg.mqtt.username, cfg.mqtt.password) == ("camera1", "s3cret")
        for key in form:
            monkeypatch.delenv(key)
