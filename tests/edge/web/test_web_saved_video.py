"""`fer-edge run --save-video` writes videos a browser plays: real runs on a real video, played
by real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) from a real HTTP
server. The control: OpenCV's `mp4v` (MPEG-4 Part 2), which the runtime used to write, fails
in the same page with MEDIA_ERR_SRC_NOT_SUPPORTED (4), so the check can fail.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import cv2
import pytest

from edge.cli import main as cli_main
from web_helpers import write_video

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")

# Plays until 0.3 s in, or reports the media error code; a page with no script of its own.
PLAY_JS = """(src) => new Promise(resolve => {
  const v = document.createElement('video');
  v.muted = true; v.playsInline = true;
  v.onerror = () => resolve({error: v.error ? v.error.code : -1});
  v.ontimeupdate = () => { if (v.currentTime > 0.3) resolve({t: v.currentTime, w: v.videoWidth, h: v.videoHeight}); };
  setTimeout(() => resolve({timeout: true, readyState: v.readyState}), 60000);
  document.body.appendChild(v);
  v.src = src;
  v.play().catch(() => {});
})"""


@pytest.fixture(scope="module")
def source_video(tmp_path_factory, fer_faces) -> Path:
    return write_video(tmp_path_factory.mktemp("src") / "talk.avi", fer_faces[:1], n_frames=24, fps=15.0,
                       size=(640, 360))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real HTTP server over a folder: (folder, base URL)."""
    folder = tmp_path_factory.mktemp("www")
    (folder / "play.html").write_text("<!doctype html><title>player</title><body></body>")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def player(served):
    from playwright.sync_api import sync_playwright

    _, base = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                           "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page()
        page.goto(f"{base}/play.html")

        def play(name: str) -> dict:
            page.goto(f"{base}/play.html")
            return page.evaluate(PLAY_JS, name)

        yield play
        browser.close()


@pytest.mark.parametrize("name", ["annotated.mp4", "annotated.webm", "annotated.mov", "annotated.mkv"])
def test_a_saved_video_plays_in_chromium(name, source_video, served, player, detector_dir, capsys):
    folder, _ = served
    out = folder / name
    rc = cli_main(["run", "--headless", "--source", str(source_video), "--save-video", str(out),
                   "--jsonl", str(folder / f"{name}.jsonl")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Traceback" not in err and "libx264" not in err  # the encoder's own chatter stays off the console
    played = player(name)
    assert "error" not in played and "timeout" not in played, played
    assert played["t"] > 0.3 and (played["w"], played["h"]) == (640, 360)


def test_the_old_mp4v_output_does_not_play_so_the_check_can_fail(source_video, served, player):
    folder, _ = served
    cap = cv2.VideoCapture(str(source_video))
    writer = cv2.VideoWriter(str(folder / "mp4v.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (640, 360))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(frame)
    writer.release()
    cap.release()
    assert player("mp4v.mp4") == {"error": 4}


def test_an_avi_is_kept_and_the_run_says_browsers_do_not_play_it(source_video, served, player, detector_dir,
                                                                  capsys, caplog):
    folder, _ = served
    rc = cli_main(["run", "--headless", "--source", str(source_video), "--save-video", str(folder / "a.avi"),
                   "--jsonl", str(folder / "a.jsonl")])
    said = capsys.readouterr().err + caplog.text
    assert rc == 0 and (folder / "a.avi").stat().st_size > 0
    assert "a.avi: web browsers do not play AVI" in said and ".mp4" in said
    assert player("a.avi") == {"error": 4}
