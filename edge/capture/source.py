"""What the user asked for: `--source` text -> a SourceSpec (camera, video, image, folder, URL, picamera2).

A folder is taken at its top level only and a glob as written; what cannot be opened raises
SourceError with what to do instead.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message says what to do."""




@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: str  # camera | video | image | folder | url | picamera2
    target: str  # camera index as text, path, glob or URL
    paths: tuple[str, ...] = ()  # image files, for image/folder

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "url", "picamera2")

    @property
    def images(self) -> bool:
        return self.kind in ("image", "folder")


def parse_source(text: str) -> SourceSpec:
    """`0`, `picamera2`, `rtsp://...`, `video.mp4`, `face.jpg`, `folder/`, `'frames/*.png'`."""
    text = str(text).strip()
    if text.isdigit():
        return SourceSpec("camera", text)
    if text == "picamera2":
        return SourceSpec("picamera2", text)
    if text.lower().startswith(URL_SCHEMES):
        return SourceSpec("url", text)
    p = Path(text).expanduser()
    if p.is_dir():
        paths = sorted(str(q) for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        if not paths:
            nested = _first_nested_image(p)
            if nested is not None:
                # Not walked: a folder tree can hold far more than the user meant to process.
                raise SourceError(f"{text}: no images at the top of this folder, only in its sub-folders; "
                                  f"pass a quoted glob to take them, e.g. --source '{p / '**' / ('*' + nested.suffix)}' "
                                  f"(or '{p / '**' / '*'}' for images of every type)")
            raise SourceError(f"{text}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        return SourceSpec("folder", text, tuple(paths))
    if any(c in text for c in "*?["):
        paths = sorted(q for q in glob.glob(os.path.expanduser(text), recursive=True)
                       if Path(q).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SourceError(f"{text}: the glob matches no images")
        return SourceSpec("folder", text, tuple(paths))
    if p.is_file():
        if not os.access(p, os.R_OK):
            raise SourceError(f"{text}: file is not readable (permissions)")
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return SourceSpec("image", text, (str(p),))
        return SourceSpec("video", text)
    raise SourceError(
        f"file not found: {text} (--source takes a camera index, a video or image file, a folder, "
        "a quoted glob of images, an rtsp/http URL or picamera2)"
    )


def _first_nested_image(folder: Path) -> Path | None:
    """An image in some sub-folder (at any depth), the first one found; None when there is none."""
    return next((q for q in folder.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()), None)
