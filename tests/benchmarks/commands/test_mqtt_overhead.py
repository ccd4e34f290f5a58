"""benchmarks.commands.mqtt_overhead: pairs of real runs against a real mosquitto, and the report they give."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("paho.mqtt.client", reason="needs paho-mqtt: pip install '.[mqtt]'")
if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
    pytest.skip("needs Debian's mosquitto package (apt-get install mosquitto)", allow_module_level=True)

from benchmarks.commands.mqtt_overhead import main  # noqa: E402


def _video(path: Path, faces: np.ndarray, frames: int = 40) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 480))
    face = cv2.cvtColor(cv2.resize(faces[0], (200, 200), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    for i in range(frames):
        image = np.full((480, 640, 3), 90, np.uint8)
        image[140:340, 220 + i % 5:420 + i % 5] = face
        writer.write(image)
    writer.release()
    return path


def test_pairs_of_runs_with_and_without_mqtt(tmp_path, face_crops, detector_dir, monkeypatch, capsys):
    monkeypatch.setenv("FER_EDGE_MODEL_DIR", str(detector_dir))
    video = _video(tmp_path / "face.avi", face_crops[0])
    assert main(["--source", str(video), "--frames", "0", "--rounds", "2", "--out", str(tmp_path / "r")]) == 0
    r = json.loads((tmp_path / "r" / "mqtt.json").read_text())
    assert len(r["pairs"]) == 2 and r["frames_per_run"] == 40
    for p in r["pairs"]:
        assert p["plain"]["frames"] == p["mqtt"]["frames"] == 40
        assert p["ratio"] == pytest.approx(p["mqtt"]["fps"] / p["plain"]["fps"], abs=1e-3)
    assert "Median ratio" in (tmp_path / "r" / "mqtt.md").read_text() and "| 2 |" in capsys.readouterr().out
