"""Where results go: JSON Lines, an annotated video and annotated images.

Every output of `fer-edge run` is a Sink: `write(result)` per processed frame, `close()` at
the end. The JSON Lines sink writes edge.record's record, one line per frame. The video and
image sinks save the annotated frame that their `annotate(result)` draws; `SavedFrames` draws
it once for all of them.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import IO, Callable, Protocol

import cv2
import numpy as np

from edge.outputs.overlay import draw
from edge.record import frame_record, record_line
from edge.types import FrameResult
from edge.outputs.video_writer import VIDEO_SUFFIXES  # noqa: F401  (re-exported: the names --save-video takes)

log = logging.getLogger(__name__)


class Sink(Protocol):
    """An output of the frame loop."""

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


Annotate = Callable[[FrameResult], np.ndarray]  # result -> (H, W, 3) uint8 BGR annotated frame


class SavedFrames:
    """The annotated frame the saving sinks write: drawn once per result, shared by all of them.

    `fps` is what the HUD shows (set by the frame loop); `hud` is off by default, since the
    frames/s of a run mean nothing in a file watched later.
    """

    def __init__(self, *, hud: bool = False, bars: bool = True):
        self.hud, self.bars = hud, bars
        self.fps: float | None = None
        self._result: FrameResult | None = None
        self._image: np.ndarray | None = None

    def __call__(self, result: FrameResult) -> np.ndarray:
        if result is not self._result:
            self._image = draw(result.frame.image, result, self.fps, hud=self.hud, bars=self.bars)
            self._result = result
        return self._image


class OutputError(OSError):
    """An output that could not be written: the option that named it, the file, and the OS's reason."""

    def __init__(self, option: str, path: str | Path, exc: OSError | str):
        reason = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        super().__init__(getattr(exc, "errno", None), reason, str(path))
        self.option, self.reason = option, reason

    def __str__(self) -> str:
        return f"{self.option} {self.filename}: {self.reason}"


class JsonlSink:
    """One JSON object per line, each line written whole or not at all.

    A file is written unbuffered, one write per line, so a killed run leaves whole lines. When
    a write fails (a full disk), the part of the line that got in is cut off again, so the file
    still holds whole lines only, and OutputError says why. `lines` counts what the file holds.
    The folder must exist: a mistyped path is an error, not a new folder.
    """

    def __init__(self, path: str | Path | None = None, stream: IO[str] | None = None, append: bool = False,
                 option: str = "--jsonl"):
        self.option = option
        self.path: Path | None = None
        self._file: IO[bytes] | None = None
        self._out: IO[str] | None = None
        if path is not None and str(path) != "-":
            self.path = Path(path)
            try:
                self._file = open(self.path, "ab" if append else "wb", buffering=0)
            except OSError as exc:
                raise OutputError(option, path, exc) from None
        else:
            self._out = stream if stream is not None else sys.stdout
        self.lines = 0

    def write(self, result: FrameResult) -> None:
        """The frame's record (edge.record.frame_record), as one line."""
        self.write_record(frame_record(result))

    def write_record(self, record: dict) -> None:
        line = record_line(record)
        if self._file is None:
            self._out.write(line)
            self._out.flush()
        else:
            self._write_whole(line.encode("utf-8"))
        self.lines += 1

    def _write_whole(self, data: bytes) -> None:
        written = 0
        try:
            while written < len(data):
                written += self._file.write(memoryview(data)[written:]) or 0
        except OSError as exc:
            if written:  # the line's head got in: cut it off (the file ends where this write began)
                try:
                    fd = self._file.fileno()
                    os.ftruncate(fd, os.fstat(fd).st_size - written)
                except OSError:
                    pass  # not a regular file (a device, a pipe): nothing to cut
            raise OutputError(self.option, self.path, exc) from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "JsonlSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoSink:
    """Annotated frames to a video file a browser plays (edge.outputs.video_writer: H.264, VP9 in .webm).

    The name is checked at once (ValueError), so a run never does its work only to find that
    no writer takes the file; the file opens on the first frame (its size). `write(result)`
    saves `annotate(result)`; `write_image` any frame. Write failures are OutputError.
    """

    def __init__(self, path: str | Path, fps: float = 25.0, annotate: Annotate | None = None,
                 option: str = "--save-video"):
        from edge.outputs.video_writer import codec_for

        self.path = Path(path)
        self.annotate = annotate
        self.option = option
        self.codec = codec_for(self.path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._writer = None
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        if self.annotate is None:
            raise TypeError("VideoSink.write(result) needs an annotate function; write_image takes frames")
        self.write_image(self.annotate(result))

    def write_image(self, image_bgr: np.ndarray) -> None:
        from edge.outputs.video_writer import VideoFileWriter

        if self._writer is None:
            self._writer = VideoFileWriter(self.path, self.fps)
        try:
            self._writer.write(image_bgr)
        except OSError as exc:
            raise OutputError(self.option, self.path, exc) from None
        self.frames += 1

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError as exc:
                raise OutputError(self.option, self.path, exc) from None

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageDirSink:
    """Annotated images into a folder, named after their source file: `write(result)` saves
    `annotate(result)`; `write_image` any image."""

    def __init__(self, out_dir: str | Path, annotate: Annotate | None = None, option: str = "--out-dir"):
        self.out_dir = Path(out_dir)
        self.annotate = annotate
        self.option = option
        try:  # the folder itself, not missing parents: a mistyped path is an error
            self.out_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(option, out_dir, exc) from None
        self._used: set[str] = set()
        self.images = 0

    def write(self, result: FrameResult) -> None:
        if self.annotate is None:
            raise TypeError("ImageDirSink.write(result) needs an annotate function; write_image takes images")
        self.write_image(self.annotate(result), result.frame.source, result.frame.index)

    def write_image(self, image_bgr: np.ndarray, source: str, index: int) -> Path:
        stem = Path(source).stem if source else f"frame_{index:06d}"
        name = f"{stem}.jpg"
        if name in self._used:  # same stem from two folders of a glob
            name = f"{stem}_{index:06d}.jpg"
        self._used.add(name)
        path = self.out_dir / name
        ok, encoded = cv2.imencode(".jpg", image_bgr)
        if not ok:
            raise OutputError(self.option, path, "OpenCV could not encode the annotated image")
        try:
            path.write_bytes(encoded.tobytes())
        except OSError as exc:
            try:
                path.unlink(missing_ok=True)  # no half-written image left behind
            except OSError:
                pass
            raise OutputError(self.option, path, exc) from None
        self.images += 1
        return path

    def close(self) -> None:
        """Each image is complete when written: nothing to flush."""
