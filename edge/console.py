"""Keep native libraries' chatter off the user's console.

LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ straight to
file descriptor 2 when the first interpreter allocates its tensors, and no Python API or
environment variable lowers that log level (TF_CPP_MIN_LOG_LEVEL does not reach it; the C++
`tflite::LoggerOptions::SetMinimumLogSeverity` is not exported). `native_stderr_to_log`
therefore points fd 2 at a temporary file for the length of such a call and hands what was
written to Python logging: "INFO:" lines at debug, anything else at warning, so nothing is lost.

OpenCV's Qt windows warn "QFontDatabase: Cannot find font directory" five times per window,
because the opencv-python wheels set QT_QPA_FONTDIR to a folder they do not ship.
`use_system_fonts_for_qt` points it at the system's fonts before the first window opens.

OpenCV's own log lines ("[ WARN:0@0.8] ... can't open camera by index", "Camera index out of
range") and FFmpeg's, which OpenCV passes on ("moov atom not found", "overread 8", "partial
file"), say in library terms what fer-edge says in its own words. `quiet_video_libraries`
silences both unless --log-level is debug.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

_redirect_lock = threading.Lock()

# Where Linux, macOS and Windows keep their fonts; any existing folder silences Qt's warning.
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype", "/usr/share/fonts",
             "/usr/local/share/fonts", "/System/Library/Fonts", "C:/Windows/Fonts")


@contextmanager
def native_stderr_to_log(logger: logging.Logger = log) -> Iterator[None]:
    """Route what native code writes to fd 2 inside the block into `logger`.

    Python's own sys.stderr is flushed first and written to the same file meanwhile, so even a
    log line from another thread during the block comes out, a moment later, through `logger`.
    Where fd 2 cannot be duplicated (no console at all), the block runs unchanged.
    """
    with _redirect_lock:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        tmp = tempfile.TemporaryFile()
        try:
            _flush(sys.stderr)
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                _flush(sys.stderr)
                os.dup2(saved, 2)
                # Also when the block failed: the native library may have said why.
                tmp.seek(0)
                for line in tmp.read().decode("utf-8", errors="replace").splitlines():
                    if line.strip():
                        level = logging.DEBUG if line.startswith("INFO:") else logging.WARNING
                        logger.log(level, "%s", line.strip())
        finally:
            tmp.close()
            os.close(saved)


def _flush(stream) -> None:
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass


def use_system_fonts_for_qt() -> str | None:
    """Point Qt at an existing font folder unless QT_QPA_FONTDIR already names one; returns it."""
    current = os.environ.get("QT_QPA_FONTDIR")
    if current and Path(current).is_dir():
        return current
    for folder in FONT_DIRS:
        if Path(folder).is_dir():
            os.environ["QT_QPA_FONTDIR"] = folder
            return folder
    return None


def quiet_video_libraries(debug: bool) -> None:
    """OpenCV's and FFmpeg's console lines off, unless `debug` (or the user set them in the environment).

    FFmpeg's level is read once, when OpenCV first opens a video, so this runs before any
    capture; OpenCV's own is also set at once when cv2 is already imported.
    """
    if debug:
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and os.environ["OPENCV_LOG_LEVEL"] == "SILENT":
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        except AttributeError:
            pass
