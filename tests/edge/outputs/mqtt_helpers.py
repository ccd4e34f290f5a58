"""A real MQTT broker (Debian's mosquitto) on a free port, a paho subscriber, and a video in which people come and go."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.labels import LABELS

GUARD_S = 60.0  # how long a wait may take before the test gives up (a hang guard, not a measurement)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.skip("needs the MQTT broker mosquitto: apt-get install mosquitto (Debian package 'mosquitto'; "
                    ".ci/run installs it)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what: str, timeout_s: float = GUARD_S, step_s: float = 0.02) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(step_s)


class Broker:
    """mosquitto on 127.0.0.1:port with persistence saved on every change, so a SIGKILL loses no session.

    `kill()` ends it as a crash would; `start()` brings it back on the same port and state.
    Extra config lines (a password file...) go in `extra`.
    """

    def __init__(self, folder: Path, port: int | None = None, extra: str = ""):
        self.binary = mosquitto_binary()
        self.folder = folder
        self.port = port or free_port()
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {folder / 'data'}/\n"
            "autosave_interval 1\nautosave_on_changes true\n"
            f"log_dest file {folder / 'broker.log'}\nlog_type all\n"
            # As root, mosquitto would switch to its own user, who cannot open the test's files.
            + ("user root\n" if os.geteuid() == 0 else "")
            + (extra or "allow_anonymous true\n"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Broker":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)

        def accepting() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.proc.stderr.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(accepting, f"mosquitto on port {self.port}")
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(GUARD_S)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Subscriber:
    """A paho client subscribed to `topics` at QoS 1 in a persistent session, collecting (topic, payload, retain).

    Persistent (clean_session False, fixed id): across a broker restart the broker keeps its
    subscriptions and queues its QoS 1 messages, as it would for any real consumer.
    """

    def __init__(self, port: int, topics: list[str], client_id: str = "test-subscriber"):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(1, 2)

        def on_connect(client, _u, _flags, reason_code, _p):
            if not reason_code.is_failure:
                client.subscribe([(t, 1) for t in topics])

        def on_subscribe(*_args):
            self._ready.set()

        def on_message(_c, _u, msg):
            with self._lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect, self.client.on_subscribe, self.client.on_message = on_connect, on_subscribe, on_message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        if not self._ready.wait(GUARD_S):
            raise AssertionError("the test subscriber could not subscribe")

    def payloads(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def json(self, suffix: str) -> list[dict]:
        return [json.loads(p) for p in self.payloads(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str) -> bytes | None:
    """The message the broker retains on `topic` (a fresh clean-session subscriber), or None."""
    import paho.mqtt.client as mqtt

    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"retained-{os.getpid()}-{time.monotonic_ns()}")
    client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(topic, 1)
    client.on_subscribe = lambda *_a: threading.Timer(1.0, done.set).start()  # retained ones arrive first

    def on_message(_c, _u, msg):
        if msg.retain:
            got.append(bytes(msg.payload))
            done.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(GUARD_S)
    client.disconnect()
    client.loop_stop()
    return got[-1] if got else None


# --- a video in which people come and go -------------------------------------------------------

# (first frame, last frame + 1, class of the face shown, or None for an empty scene)
PRESENCE_SCRIPT = ((0, 8, None), (8, 45, "happy"), (45, 85, "surprise"), (85, 140, None), (140, 175, "angry"))
PRESENCE_FPS = 15.0


def presence_video(path: Path, faces_dir: Path, size=(640, 480), face_px: int = 170,
                   script=PRESENCE_SCRIPT) -> Path:
    """A real video written by OpenCV: an empty room, one person whose expression changes, nobody for
    longer than the tracker's 2 s, then someone else. Faces are committed FER-2013 crops, upscaled."""
    w, h = size
    rng = np.random.default_rng(7)
    room = cv2.GaussianBlur(rng.integers(60, 200, (h, w, 3), dtype=np.uint8), (0, 0), 9)
    crops = {}
    for name in {c for _, _, c in script if c}:
        file = sorted((faces_dir / name).glob("PublicTest_*.jpg"))[0]
        gray = cv2.resize(cv2.imread(str(file), cv2.IMREAD_GRAYSCALE), (face_px, face_px),
                          interpolation=cv2.INTER_CUBIC)
        crops[name] = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    assert set(crops) <= set(LABELS)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), PRESENCE_FPS, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    try:
        for start, stop, name in script:
            for i in range(start, stop):
                frame = room.copy()
                if name:
                    x = w // 2 - face_px // 2 + int(6 * np.sin(i / 5))
                    y = h // 2 - face_px // 2
                    frame[y:y + face_px, x:x + face_px] = crops[name]
                writer.write(frame)
    finally:
        writer.release()
    return path
