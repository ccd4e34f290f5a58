"""`fer-edge run`'s window: opened resizable and scaled to fit the screen, and the keys it waits for.

A 1080p video in a native-size window runs off a 1280x800 screen, so the window is a
resizable one (the picture keeps its aspect ratio) sized to at most 90 % of the screen's
width and 85 % of its height; it is sized again whenever the picture's size changes (photos of
different sizes). Small photos are shown enlarged to STILL_MIN_WIDTH_PX before the overlay is
drawn, so its labels and the key hint have room. The screen size comes from X11 or Windows
through ctypes; elsewhere (macOS, Wayland without XWayland) the window opens at the picture's
size, capped at MAX_UNKNOWN_SCREEN, and can be resized by hand.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
import sys
import threading

import numpy as np

from edge.types import Faces, FrameResult

WINDOW = "fer-edge"
SCREEN_SHARE = (0.90, 0.85)  # of the screen's width and height: room for the title bar and a panel
STILL_MIN_WIDTH_PX = 640
MAX_UNKNOWN_SCREEN = (1280, 720)


def screen_size() -> tuple[int, int] | None:
    """(width, height) of the screen the window opens on, in pixels; None when it cannot be told."""
    if sys.platform.startswith("win"):
        try:
            user32 = ctypes.windll.user32  # type: ignore[attr-defined]
            return int(user32.GetSystemMetrics(0)), int(user32.GetSystemMetrics(1))
        except (AttributeError, OSError):
            return None
    if not os.environ.get("DISPLAY"):
        return None
    name = ctypes.util.find_library("X11")
    if not name:
        return None
    try:
        x11 = ctypes.CDLL(name)
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
        x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = x11.XOpenDisplay(None)
        if not display:
            return None
        try:
            screen = x11.XDefaultScreen(display)
            return int(x11.XDisplayWidth(display, screen)), int(x11.XDisplayHeight(display, screen))
        finally:
            x11.XCloseDisplay(display)
    except (OSError, AttributeError):
        return None


def fit(size_wh: tuple[int, int], screen_wh: tuple[int, int] | None) -> tuple[int, int]:
    """The window size for a picture of `size_wh`: the picture's own, scaled down (aspect kept) to fit."""
    w, h = size_wh
    room_w, room_h = ((int(screen_wh[0] * SCREEN_SHARE[0]), int(screen_wh[1] * SCREEN_SHARE[1]))
                      if screen_wh else MAX_UNKNOWN_SCREEN)
    scale = min(1.0, room_w / w, room_h / h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def enlarged_still(result: FrameResult, min_width_px: int = STILL_MIN_WIDTH_PX) -> FrameResult:
    """A small photo's result scaled up for display (image, boxes and keypoints alike); others as they are."""
    import cv2

    h, w = result.frame.image.shape[:2]
    if w >= min_width_px:
        return result
    s = min_width_px / w
    image = cv2.resize(result.frame.image, (min_width_px, round(h * s)), interpolation=cv2.INTER_LINEAR)
    f = result.faces
    faces = Faces(xyxy=np.round(f.xyxy * s).astype(f.xyxy.dtype), score=f.score,
                  keypoints=(f.keypoints * s).astype(f.keypoints.dtype))
    return dataclasses.replace(result, frame=dataclasses.replace(result.frame, image=image), faces=faces)


def renumbered(result: FrameResult) -> FrameResult:
    """Unrelated photos: their faces numbered 1..n in each image, not by a tracker's running count."""
    n = len(result.faces)
    if n == 0 or (len(result.track_ids) == n and np.array_equal(result.track_ids, np.arange(1, n + 1))):
        return result
    return dataclasses.replace(result, track_ids=np.arange(1, n + 1, dtype=np.int64))


def still_hint(paths: tuple[str, ...], source: str) -> str:
    """The keys a still waits for, shown in its window (it waits for a key without saying so)."""
    n = len(paths)
    k = paths.index(source) + 1 if source in paths else 0
    where = f"image {k} of {n}: " if n > 1 and k else ""
    return where + ("any key: next image   q or Esc: quit" if k < n else "any key or q: close")


class RunWindow:
    """The one window of a run: `show(image_bgr, still)` -> True when the user asked to quit."""

    def __init__(self, stop: threading.Event):
        import cv2

        from edge.console import use_system_fonts_for_qt

        self.stop = stop
        use_system_fonts_for_qt()
        # GUI_NORMAL: no Qt toolbar or status bar, so the picture fills the window it was sized for.
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        self.screen = screen_size()
        self._size: tuple[int, int] | None = None

    def title(self, text: str) -> None:
        import cv2

        cv2.setWindowTitle(WINDOW, text)

    def show(self, image_bgr: np.ndarray, still: bool) -> bool:
        """Show a frame; True when the user asked to quit (q, Esc, or closed the window)."""
        import cv2

        size = (image_bgr.shape[1], image_bgr.shape[0])
        if size != self._size:
            self._size = size
            cv2.resizeWindow(WINDOW, *fit(size, self.screen))
        cv2.imshow(WINDOW, image_bgr)
        while True:
            key = cv2.waitKey(100 if still else 1) & 0xFF
            if key in (ord("q"), 27):
                return True
            try:
                if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                    return True
            except cv2.error:
                return True
            # A still stays up until a key (any key: next image) or a stop signal.
            if not still or key != 255 or self.stop.is_set():
                return False

    def poll_quit(self) -> bool:
        """While no frame is ready: True when q or Esc was pressed."""
        import cv2

        return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()
        cv2.waitKey(1)
