"""Helpers for the web tests: FER-2013 faces on backgrounds, videos, y4m files, a real `fer-edge serve`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[3]
SCREENS_DIR = Path("/tmp/web-screens")
FACE_CLASSES = ("happy", "surprise", "angry", "neutral")


def scene(faces: list[np.ndarray], boxes: list[tuple[int, int, int]], size=(640, 480), shade: int = 90) -> np.ndarray:
    """FER faces upscaled into squares (x, y, side) on a plain background -> (H, W, 3) uint8 BGR."""
    w, h = size
    image = np.full((h, w, 3), shade, np.uint8)
    image[:, :, 0] = np.linspace(shade - 30, shade + 30, w, dtype=np.uint8)[None, :]  # a little texture
    for face, (x, y, side) in zip(faces, boxes):
        big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        image[y:y + side, x:x + side] = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    return image


def encode(image_bgr: np.ndarray, ext: str, *params: int) -> bytes:
    """Image file bytes; `params` are OpenCV writer flags, e.g. cv2.IMWRITE_JPEG_QUALITY, 92."""
    ok, buf = cv2.imencode(ext, image_bgr, list(params))
    assert ok, ext
    return buf.tobytes()


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def write_video(path: Path, faces: list[np.ndarray], n_frames: int, fps: float = 10.0,
                size=(320, 240)) -> Path:
    """An MJPG .avi with one FER face drifting across a background (OpenCV's writer, no codecs needed)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened(), path
    w, h = size
    side = h * 2 // 3
    for i in range(n_frames):
        x = int((w - side) * (0.5 + 0.4 * np.sin(i / 10.0)))
        writer.write(scene([faces[i // 20 % len(faces)]], [(x, (h - side) // 2, side)], size))
    writer.release()
    return path


def write_y4m(path: Path, frames_bgr: list[np.ndarray], fps: int = 10) -> Path:
    """A YUV4MPEG2 file (4:2:0) for Chromium's fake camera: header, then FRAME + I420 planes."""
    h, w = frames_bgr[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in frames_bgr:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())  # Y, then U, then V planes
    return path


def save_screen(page, tmp_path: Path, name: str) -> Path:
    """Screenshot to the test's tmp dir and a copy in /tmp/web-screens for a human to look at."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENS_DIR / path.name)
    return path


# --- a real `fer-edge serve` in a subprocess ------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def get(self, path: str, token: str | None = None, timeout_s: float = 30.0):
        """(status, headers, body bytes) of a GET."""
        req = urllib.request.Request(self.url + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def post_image(self, path: str, data: bytes, token: str | None = None, field_name: str = "image",
                   filename: str = "face.jpg", timeout_s: float = 60.0):
        """(status, headers, body bytes) of a multipart POST with one file field."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        body += data + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(self.url + path, data=body, method="POST")
        req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_server(*args: str, env: dict | None = None, timeout_s: float = 180.0) -> Server:
    """`fer-edge serve --port 0 ARGS` in a subprocess; waits for its URL line and /api/health."""
    cmd = [sys.executable, "-m", "edge", "serve", "--port", "0", *args]
    full_env = {k: v for k, v in os.environ.items() if k != "FER_EDGE_TOKEN"}  # only what the test sets
    full_env.update(PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    server = Server(proc, "")
    found = threading.Event()

    def drain():
        for line in proc.stdout:
            server.lines.append(line)
            m = re.search(r"fer-edge serve: (http://\S+?)/ ", line)
            if m and not found.is_set():
                server.url = m.group(1)
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(timeout_s) or not server.url:
        server.stop()
        raise AssertionError(f"server did not start: {cmd}\n{server.output}")
    token = (env or {}).get("FER_EDGE_TOKEN") or (args[args.index("--token") + 1] if "--token" in args else None)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if server.get("/api/health", token, timeout_s=2)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server never answered /api/health\n{server.output}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
