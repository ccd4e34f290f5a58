"""Model file lookup (explicit > env > cache), the missing-model message, and `models pull`
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import stat
import threading
from pathlib import Path

import pytest

from edge.models import registry
from edge.cli import main as cli_main
from edge.atomic import sha256_file
from edge.models.registry import (ChecksumMismatchError, ModelDownloadError, ModelNotFoundError,
                         pull_detector_model, resolve_detector_model)

SHORT = registry.DETECTOR_MODELS["short"]
FULL = registry.DETECTOR_MODELS["full"]


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No FER_EDGE_MODEL_DIR / URL base, and an empty private cache under tmp_path."""
    monkeypatch.delenv(registry.ENV_MODEL_DIR, raising=False)
    monkeypatch.delenv(registry.ENV_URL_BASE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def put(directory: Path, name: str, data: bytes = b"model bytes") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    return directory / name


def test_cache_dir_honours_xdg(clean_env, monkeypatch):
    assert registry.cache_dir() == clean_env / "xdg" / "fer-edge" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert registry.cache_dir() == Path.home() / ".cache" / "fer-edge" / "models"


# Which places hold the file -> which one wins.
ORDER = [
    ({"explicit", "env", "cache"}, "explicit"),
    ({"env", "cache"}, "env"),
    ({"cache"}, "cache"),
    ({"explicit", "cache"}, "explicit"),
]


@pytest.mark.parametrize("present, winner", ORDER)
@pytest.mark.parametrize("model", [SHORT, FULL], ids=["short", "full"])
def test_resolution_order(clean_env, monkeypatch, present, winner, model):
    places = {
        "explicit": clean_env / "mine",
        "env": clean_env / "envdir",
        "cache": registry.cache_dir(),
    }
    for place in present:
        put(places[place], model.filename)
    monkeypatch.setenv(registry.ENV_MODEL_DIR, str(places["env"]))
    explicit = places["explicit"] / model.filename if "explicit" in present else None
    path = resolve_detector_model(model.range, explicit)
    assert path == places[winner] / model.filename
    assert registry.locate_detector_model(model.range, explicit) == (path, winner)


def test_explicit_directory_is_searched_for_the_file(clean_env):
    put(clean_env / "dir", FULL.filename)
    assert resolve_detector_model("full", clean_env / "dir") == clean_env / "dir" / FULL.filename


def test_env_dir_without_the_file_falls_through_to_cache(clean_env, monkeypatch):
    monkeypatch.setenv(registry.ENV_MODEL_DIR, str(clean_env / "empty"))
    put(registry.cache_dir(), SHORT.filename)
    assert resolve_detector_model("short") == registry.cache_dir() / SHORT.filename


@pytest.mark.parametrize("range_, pull_command", [("short", "fer-edge models pull"),
                                                  ("full", "fer-edge models pull --range full")])
def test_missing_model_says_how_to_supply_it(clean_env, range_, pull_command):
    model = registry.DETECTOR_MODELS[range_]
    with pytest.raises(ModelNotFoundError) as err:
        resolve_detector_model(range_)
    text = str(err.value)
    for needle in ("--detector-model", registry.ENV_MODEL_DIR, str(registry.cache_dir() / model.filename),
                   pull_command, model.filename):
        assert needle in text, needle


def test_missing_explicit_path_is_not_silently_replaced(clean_env):
    put(registry.cache_dir(), SHORT.filename)  # a cached copy must not hide a wrong explicit path
    with pytest.raises(ModelNotFoundError, match="nowhere.tflite"):
        resolve_detector_model("short", clean_env / "nowhere.tflite")


def test_make_detector_without_a_model_raises_the_same_error(clean_env):
    from edge.detect.factory import DetectorConfig, make_detector

    with pytest.raises(ModelNotFoundError, match="fer-edge models pull"):
        make_detector(DetectorConfig(scan="frame"))


@pytest.mark.parametrize("range_, size", [("short", 128), ("full", 192)])
def test_make_detector_takes_an_explicit_file_or_directory(clean_env, request, range_, size):
    from edge.detect.factory import DetectorConfig, make_detector

    model = registry.DETECTOR_MODELS[range_]
    file = request.getfixturevalue("detector_dir") / model.filename if range_ == "short" \
        else request.getfixturevalue("full_detector")
    for given in (file.parent, file):
        with make_detector(DetectorConfig(range=range_, model_path=given, scan="frame"), threads=1) as det:
            assert det.detector.input_size == size
    with pytest.raises(ModelNotFoundError, match="--detector-model"):
        make_detector(DetectorConfig(range=range_, model_path=clean_env / model.filename, scan="frame"))


def test_unknown_range():
    with pytest.raises(ValueError, match="short, full"):
        resolve_detector_model("medium")


# Downloads from a real HTTP server serving a temporary copy of the mirror's files.

@pytest.fixture
def server(tmp_path, detector_dir, full_detector):
    """(base URL, served directory, list of request paths)."""
    root = tmp_path / "served"
    root.mkdir()
    shutil.copyfile(detector_dir / SHORT.filename, root / SHORT.filename)
    shutil.copyfile(full_detector, root / FULL.filename)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep the test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize("model", [SHORT, FULL], ids=["short", "full"])
def test_pull_downloads_and_verifies(clean_env, server, model):
    base, root, requests = server
    seen = []
    path = pull_detector_model(model.range, url_base=base, progress=lambda done, total: seen.append((done, total)))
    assert path == registry.cache_dir() / model.filename
    assert sha256_file(path) == model.sha256[0] == sha256_file(root / model.filename)
    assert seen and seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert sorted(p.name for p in path.parent.iterdir()) == [model.filename]  # no temp file left
    assert resolve_detector_model(model.range) == path  # the lookup now finds it in the cache
    # A good copy is kept: a second pull does not download again.
    assert pull_detector_model(model.range, url_base=base) == path
    assert requests == [f"/{model.filename}"]


def test_pull_honours_the_env_url_base_and_dest(clean_env, server, monkeypatch):
    base, _, requests = server
    monkeypatch.setenv(registry.ENV_URL_BASE, base + "/")
    path = pull_detector_model("short", clean_env / "dest")
    assert path == clean_env / "dest" / SHORT.filename and path.is_file()
    assert requests == [f"/{SHORT.filename}"]


@pytest.fixture
def strict_umask():
    """umask 077, as under sudo on some systems: files 0600 and folders 0700 unless set explicitly."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_pulled_models_are_readable_by_other_users(clean_env, server, strict_umask):
    base, _, _ = server
    dest = clean_env / "opt" / "fer-edge" / "models"  # none of these folders exists yet
    for range_ in ("short", "full"):
        path = pull_detector_model(range_, dest, base)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
    for folder in (clean_env / "opt", clean_env / "opt" / "fer-edge", dest):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, (folder, oct(folder.stat().st_mode))
    # The user cache too, through the CLI.
    assert cli_main(["models", "pull", "--url-base", base]) == 0
    cached = registry.cache_dir() / SHORT.filename
    assert stat.S_IMODE(cached.stat().st_mode) == 0o644
    assert stat.S_IMODE(registry.cache_dir().stat().st_mode) == 0o755


def test_a_good_copy_left_private_by_an_older_pull_is_made_readable(clean_env, server):
    base, root, requests = server
    dest = clean_env / "dest"
    old = put(dest, SHORT.filename, (root / SHORT.filename).read_bytes())
    os.chmod(old, 0o600)
    assert pull_detector_model("short", dest, base) == old
    assert stat.S_IMODE(old.stat().st_mode) == 0o644 and requests == []  # kept, not downloaded again


def test_wrong_checksum_leaves_nothing(clean_env, server):
    base, root, _ = server
    data = bytearray((root / SHORT.filename).read_bytes())
    data[1000] ^= 0xFF  # one flipped byte
    (root / SHORT.filename).write_bytes(bytes(data))
    dest = clean_env / "dest"
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch"):
        pull_detector_model("short", dest, base)
    assert list(dest.iterdir()) == []


def test_failed_pull_keeps_an_existing_file(clean_env, server):
    base, root, _ = server
    (root / SHORT.filename).write_bytes(b"not the model")
    dest = clean_env / "dest"
    old = put(dest, SHORT.filename, b"an older copy")
    with pytest.raises(ChecksumMismatchError):
        pull_detector_model("short", dest, base, force=True)
    assert old.read_bytes() == b"an older copy"
    assert sorted(p.name for p in dest.iterdir()) == [SHORT.filename]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("where, message", [
    ("unreachable", "could not download"),
    ("missing-file", "HTTP 404"),
])
def test_download_errors_are_clear(clean_env, server, where, message):
    base, root, _ = server
    if where == "unreachable":
        base = f"http://127.0.0.1:{closed_port()}"
    else:
        (root / SHORT.filename).unlink()
    dest = clean_env / "dest"
    with pytest.raises(ModelDownloadError, match=message):
        pull_detector_model("short", dest, base, timeout_s=5)
    assert list(dest.iterdir()) == []


# The `fer-edge models` CLI.

def test_cli_pull_and_list(clean_env, server, capsys, monkeypatch):
    base, _, _ = server
    assert cli_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("MISSING") == 2 and "fer-edge models pull --range full" in out

    assert cli_main(["models", "pull", "--range", "all", "--url-base", base]) == 0
    out = capsys.readouterr().out
    assert "short:" in out and "full:" in out
    assert cli_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "MISSING" not in out and out.count(str(registry.cache_dir())) == 2

    monkeypatch.setenv(registry.ENV_MODEL_DIR, str(registry.cache_dir()))
    assert cli_main(["models", "list"]) == 0
    assert capsys.readouterr().out.count(f"${registry.ENV_MODEL_DIR}") == 2


def test_cli_pull_errors_exit_2(clean_env, capsys):
    assert cli_main(["models", "pull", "--url-base", f"http://127.0.0.1:{closed_port()}", "--timeout-s", "5"]) == 2
    err = capsys.readouterr().err
    assert "fer-edge models: error: could not download" in err and "Traceback" not in err


def test_default_emotion_model():
    path = registry.default_emotion_model()
    assert path.name == "emotion_int8.tflite" and path.is_file()
    assert path.with_suffix(".json").is_file()  # its sidecar ships beside it
