"""Where the model files come from: the face detectors (downloaded once) and the shipped emotion model.

Detector lookup order, first hit wins:
  1. an explicit path (`--detector-model PATH`);
  2. the directory in the environment variable FER_EDGE_MODEL_DIR;
  3. the user cache, $XDG_CACHE_HOME/fer-edge/models (default ~/.cache/fer-edge/models);
  4. nothing: ModelNotFoundError says how to supply the file, including `fer-edge models pull`,
     which downloads the official MediaPipe file into the cache and checks a pinned sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edge.atomic import atomic_path, sha256_file

log = logging.getLogger(__name__)

ENV_MODEL_DIR = "FER_EDGE_MODEL_DIR"
ENV_URL_BASE = "FER_EDGE_MODEL_URL_BASE"  # download from URL_BASE/<filename> instead (mirrors, tests)
RANGES = ("short", "full")
MODEL_FILE_MODE = 0o644  # downloaded models: readable by a service's own user
MODEL_DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class DetectorModel:
    range: str  # "short" | "full"
    filename: str
    url: str  # the official download
    sha256: tuple[str, ...]  # accepted digests, hex
    input_size: int  # square network input, pixels
    description: str


DETECTOR_MODELS: dict[str, DetectorModel] = {
    "short": DetectorModel(
        range="short",
        filename="blaze_face_short_range.tflite",
        url="https://storage.googleapis.com/mediapipe-models/face_detector/"
        "blaze_face_short_range/float16/latest/blaze_face_short_range.tflite",
        # First digest: the project's offline mirror, which is the mediapipe
        # 0.10.21 wheel's face_detection_short_range network plus MediaPipe's image metadata;
        # it stands in for the official download and was never checked against it. Second: the
        # digest that public listings give for the official float16/1 file (229746 bytes). Both
        # are to be re-checked online against the URL above.
        sha256=(
            "07401b584ea5cf232fe0acfdff1865447dadcdcba36612fb5161d7d74ba35d0b",
            "b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
        ),
        input_size=128,
        description="BlazeFace short range (faces within ~2 m), 128x128",
    ),
    "full": DetectorModel(
        range="full",
        filename="face_detection_full_range_sparse.tflite",
        url="https://raw.githubusercontent.com/google-ai-edge/mediapipe/master/"
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        # The offline mirror's file (from the mediapipe 0.10.21 wheel); re-check online.
        sha256=("2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",),
        input_size=192,
        description="BlazeFace full range sparse (faces up to ~5 m), 192x192",
    ),
}


class ModelNotFoundError(FileNotFoundError):
    """A model file is not where any lookup rule points; the message says how to supply it."""


class ModelDownloadError(RuntimeError):
    """A download failed (network, HTTP status, or checksum); nothing was left in the destination."""


class ChecksumMismatchError(ModelDownloadError):
    """The downloaded bytes do not match the pinned sha256."""


def detector_model(range: str) -> DetectorModel:
    try:
        return DETECTOR_MODELS[range]
    except KeyError:
        raise ValueError(f"unknown detector range {range!r}; choose one of {', '.join(RANGES)}") from None


def cache_dir() -> Path:
    """The per-user model cache: $XDG_CACHE_HOME/fer-edge/models, else ~/.cache/fer-edge/models."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base.strip() else Path.home() / ".cache"
    return root / "fer-edge" / "models"


def locate_detector_model(range: str = "short", explicit: str | os.PathLike | None = None
                          ) -> tuple[Path | None, str]:
    """(path or None, where it came from: "explicit" | "env" | "cache" | "missing")."""
    model = detector_model(range)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_dir():
            path = path / model.filename
        return (path if path.is_file() else None), "explicit"
    env_dir = os.environ.get(ENV_MODEL_DIR, "").strip()
    if env_dir:
        path = Path(env_dir).expanduser() / model.filename
        if path.is_file():
            return path, "env"
    path = cache_dir() / model.filename
    if path.is_file():
        return path, "cache"
    return None, "missing"


def missing_model_message(range: str = "short", explicit: str | os.PathLike | None = None) -> str:
    model = detector_model(range)
    if explicit is not None:
        head = f"detector model not found: {explicit} (given with --detector-model)"
    else:
        head = f"{model.range}-range face detector model {model.filename} not found"
    env_dir = os.environ.get(ENV_MODEL_DIR, "").strip()
    env_note = f" (now {env_dir!r}, which has no {model.filename})" if env_dir else " (not set)"
    pull = "fer-edge models pull" + ("" if range == "short" else f" --range {range}")
    return (f"{head}. Supply it one of these ways:\n"
            f"  1. pass its path: --detector-model /path/to/{model.filename}\n"
            f"  2. set {ENV_MODEL_DIR} to a directory that holds {model.filename}{env_note}\n"
            f"  3. put it in the user cache: {cache_dir() / model.filename}\n"
            f"  or download it into the cache (needs internet): {pull}\n"
            f"  (official file: {model.url})")


def resolve_detector_model(range: str = "short", explicit: str | os.PathLike | None = None) -> Path:
    """The detector model file for `range`, by the lookup order above; ModelNotFoundError if none."""
    path, source = locate_detector_model(range, explicit)
    if path is None:
        raise ModelNotFoundError(missing_model_message(range, explicit))
    log.debug("%s-range detector model from %s: %s", range, source, path)
    return path


def model_url(range: str, url_base: str | None = None) -> str:
    """The download URL: URL_BASE/<filename> when a base is given (or FER_EDGE_MODEL_URL_BASE is set)."""
    model = detector_model(range)
    base = url_base if url_base is not None else os.environ.get(ENV_URL_BASE, "").strip() or None
    return f"{base.rstrip('/')}/{model.filename}" if base else model.url


def pull_detector_model(
    range: str = "short",
    dest_dir: str | os.PathLike | None = None,
    url_base: str | None = None,
    *,
    force: bool = False,
    timeout_s: float = 30.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download a detector model into dest_dir (default: the user cache) and verify its sha256.

    The bytes go to a temporary file in dest_dir that is renamed into place only after the
    checksum passes, so an interrupted or corrupt download never leaves a file that the lookup
    would pick up. An existing file with a good checksum is kept unless `force`.
    The file is made 0644 and the folders this call creates 0755, whatever the umask: a model
    pulled with sudo into /opt must stay readable by the service user that runs fer-edge.
    `progress(bytes_done, bytes_total_or_None)` is called as data arrives.
    """
    model = detector_model(range)
    dest = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    target = dest / model.filename
    if target.is_file() and not force and sha256_file(target) in model.sha256:
        log.info("%s already present with a good checksum", target)
        _make_readable(target)  # a copy left 0600 by an earlier version
        return target
    url = model_url(range, url_base)
    _make_dirs(dest)
    # Any failure, Ctrl-C included, leaves no partial file.
    with atomic_path(target, MODEL_FILE_MODE) as tmp:
        digest = hashlib.sha256()
        try:
            with open(tmp, "xb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                done = 0
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                out.flush()
                os.fsync(out.fileno())
        except urllib.error.HTTPError as exc:
            raise ModelDownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelDownloadError(
                f"could not download {url}: {reason}. Check the network (or --url-base / "
                f"{ENV_URL_BASE}), or fetch {model.filename} by hand and put it in {dest}") from exc
        got = digest.hexdigest()
        if got not in model.sha256:
            raise ChecksumMismatchError(
                f"checksum mismatch for {url}: got sha256 {got}, expected {' or '.join(model.sha256)}; "
                f"the download was discarded")
    log.info("saved %s (sha256 ok)", target)
    return target


def _make_dirs(folder: Path) -> None:
    """mkdir -p, each folder created here set to 0755 (the umask may be stricter)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        os.chmod(d, MODEL_DIR_MODE)


def _make_readable(path: Path) -> None:
    """Adds read permission for group and others when missing (a file this call did not write)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o044 != 0o044:
        try:
            os.chmod(path, mode | 0o044)
        except PermissionError:
            log.warning("%s is not world-readable and cannot be changed here; a service user may fail to "
                        "read it", path)


def default_emotion_model() -> Path:
    """The shipped int8 emotion model (models/emotion_int8.tflite, with its .json sidecar).

    Installed as package data of `fer_edge_models`; in a source checkout that package is the
    repository's models/ folder, found the same way or, failing that, next to edge/.
    """
    name = "emotion_int8.tflite"
    try:
        from importlib.resources import files

        candidate = Path(str(files("fer_edge_models") / name))
        if candidate.is_file():
            return candidate
    except (ModuleNotFoundError, TypeError):
        pass
    candidate = Path(__file__).resolve().parents[2] / "models" / name
    if candidate.is_file():
        return candidate
    raise ModelNotFoundError(
        f"the shipped emotion model {name} is missing: reinstall fer-edge, or pass "
        f"--emotion-model PATH (a .tflite with its .json sidecar)")
