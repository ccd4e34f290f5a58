"""Files written whole or not at all, and file digests.

Every writer goes through `atomic_path`: a temporary file beside the target, then one rename.
A reader (or a crash, or Ctrl-C) sees either the old file or the complete new one, never half
of it, and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Written files are world-readable by default, so a service user can read what an
# administrator wrote (a temporary file made by mkstemp would stay 0600).
DEFAULT_MODE = 0o644


@contextmanager
def atomic_path(path: str | Path, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` when the block ends.

    The temporary name ends in the target's suffixes, for writers that choose the format from it
    (Keras, which also insists on `.weights.h5`, Matplotlib, NumPy). If the block raises, the temporary file is removed. mode: the
    permissions to give the file; None keeps what the writer created it with (the umask's).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{''.join(path.suffixes)}")
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = DEFAULT_MODE) -> Path:
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, mode: int | None = DEFAULT_MODE) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode)


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
