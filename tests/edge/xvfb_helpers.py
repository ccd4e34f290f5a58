"""A virtual X screen (Xvfb) for the tests that open a real window."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest


def _free_display() -> int:
    for n in range(90, 400):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            return n
    pytest.skip("no free X display number")


@contextlib.contextmanager
def xvfb_display(screen: tuple[int, int], tools: tuple[str, ...] = ("Xvfb",),
                 install: str = "xvfb") -> Iterator[str]:
    """Start Xvfb with a (width, height) screen and yield its DISPLAY (":N"); skip when the
    tools are missing, naming the Debian packages (`install`)."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install -y {install})")
    n = _free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{screen[0]}x{screen[1]}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Xvfb :{n} did not start")
            time.sleep(0.05)
        yield f":{n}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
