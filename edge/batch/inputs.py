"""What `fer-edge batch` runs over: INPUT arguments expanded to files, each a video or an image.

An argument is a file, a folder (walked recursively), a quoted glob ('clips/**/*.mp4') or
`@list.txt`, a text file with one argument per line (blank lines and lines starting with # are
skipped; a relative path is taken from the list's folder). Files are told apart by their first
bytes, not their names: a JPEG called `.dat` is an image, an MP4 without a suffix is a video.
Walking a folder keeps only the files that look like a video or an image, and skips hidden
files and folders; a file named on its own (directly, by a glob or in a list) is always kept,
and one that is neither becomes an error row of the batch, not a failure of the whole batch.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

HEAD_BYTES = 192  # enough for every signature below (a transport stream's second packet at 188)

# Kinds of input. "unknown" is tried as a video (OpenCV reads containers this list does not
# name); "missing" is a listed path that is not there (an error row).
KINDS = ("video", "image", "unknown", "missing")

# ISO base media brands that hold still images (HEIF/AVIF), not video.
_STILL_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


def sniff(head: bytes) -> str:
    """"image", "video" or "unknown" from a file's first HEAD_BYTES bytes."""
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*") or (head[:2] == b"BM" and len(head) >= 14):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:2] in (b"P2", b"P3", b"P5", b"P6") and head[2:3] in (b" ", b"\n", b"\r", b"\t"):
        return "image"
    if head[4:8] == b"ftyp":
        return "image" if head[8:12] in _STILL_BRANDS else "video"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):  # QuickTime without ftyp
        return "video"
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return "video"
    if head[:4] in (b"\x1aE\xdf\xa3", b"OggS") or head[:3] == b"FLV":  # Matroska/WebM, Ogg, Flash
        return "video"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG program stream, MPEG-1/2
        return "video"
    if head[:8] == b"0&\xb2u\x8ef\xcf\x11":  # ASF / WMV
        return "video"
    if head[:6] in (b"GIF87a", b"GIF89a"):  # animated or not, OpenCV reads GIFs as videos
        return "video"
    if len(head) > 188 and head[0] == head[188] == 0x47:  # MPEG transport stream: a sync byte per packet
        return "video"
    return "unknown"


def sniff_file(path: str | os.PathLike) -> str:
    """The kind of the file at `path`; "missing" when it cannot be opened (gone, no permission)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return "missing"
    return sniff(head)


@dataclass(frozen=True, slots=True)
class Input:
    path: str  # as found (absolute when the argument was)
    kind: str  # one of KINDS


class InputError(ValueError):
    """An argument that names nothing (a typo): the batch does not start."""


def expand(arguments: Iterable[str], *, skip: Iterable[str | os.PathLike] = ()) -> list[Input]:
    """Every input the arguments name, in argument order, each file once. `skip`: folders never
    walked into (the batch's own output folder when it sits inside an input folder).
    Raises InputError for an argument (not a list line) that names nothing."""
    skipped = {os.path.realpath(p) for p in skip}
    seen: set[str] = set()
    out: list[Input] = []
    for found in _arguments(arguments, skipped, from_list=None):
        real = os.path.realpath(found.path)
        if real not in seen:
            seen.add(real)
            out.append(found)
    return out


def _arguments(arguments: Iterable[str], skipped: set[str], from_list: Path | None) -> Iterator[Input]:
    for raw in arguments:
        arg = raw.strip() if from_list is not None else raw
        if from_list is not None and (not arg or arg.startswith("#")):
            continue
        if arg.startswith("@"):
            yield from _list_file(Path(arg[1:]).expanduser() if from_list is None else _relative(arg[1:], from_list),
                                  skipped)
            continue
        p = Path(arg).expanduser() if from_list is None else _relative(arg, from_list)
        if p.is_dir():
            yield from _walk(p, skipped)
        elif p.is_file():
            yield Input(str(p), sniff_file(p))
        elif any(c in arg for c in "*?["):
            matches = sorted(glob.glob(str(p), recursive=True))
            if not matches and from_list is None:
                raise InputError(f"{arg}: the glob matches nothing")
            for m in matches:
                if os.path.isdir(m):
                    yield from _walk(Path(m), skipped)
                elif os.path.isfile(m):
                    yield Input(m, sniff_file(m))
        elif from_list is not None:
            yield Input(str(p), "missing")  # a stale line of a list: an error row, the rest goes on
        else:
            raise InputError(f"{arg}: no such file or folder (INPUT takes files, folders, quoted globs and "
                             "@list.txt files)")


def _relative(text: str, list_file: Path) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else list_file.parent / p


def _list_file(path: Path, skipped: set[str]) -> Iterator[Input]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"@{path}: no such list file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"@{path}: cannot read the list ({exc})") from None
    yield from _arguments(lines, skipped, from_list=path)


def _walk(folder: Path, skipped: set[str]) -> Iterator[Input]:
    """Videos and images under `folder`, recursively, in sorted order; hidden entries skipped."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.realpath(os.path.join(root, d)) not in skipped)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            kind = sniff_file(path)
            if kind in ("video", "image"):
                yield Input(path, kind)
