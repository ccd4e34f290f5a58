"""The live page's rolling chart of label shares: the per-second counts behind it, and the chart
drawn by headless Chromium from a real `fer-edge serve --source VIDEO`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.web.shares import LabelShares
from test_web_browser import CHROMIUM, TIMEOUT_MS, TOKEN, browser, camera_file, page, pw, wait_until  # noqa: F401
from web_helpers import save_screen, start_server, write_video


def test_counts_are_kept_per_second_for_the_window_only():
    shares = LabelShares(window_s=60.0)
    for k in range(100):  # 10 frames per second for 10 s, labels 0, 0, 3 per frame
        shares.add(1000.0 + k / 10, np.array([0, 0, 3]), 7)
    snap = shares.snapshot(1009.95)
    assert snap["age_s"] == [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    assert snap["frames"] == [10] * 10
    assert snap["counts"][0] == [20, 0, 0, 10, 0, 0, 0]
    shares.add(1011.0, np.array([], np.int64), 7)  # a frame without faces: counted, no face
    assert shares.snapshot(1011.5)["counts"][-1] == [0] * 7
    assert shares.snapshot(1065.0)["age_s"] == [59.0, 58.0, 57.0, 56.0, 54.0]  # 1000-1005 left the window
    assert shares.snapshot(1070.0)["age_s"] == [59.0]
    assert len(shares._buckets) <= 61  # bounded, however long it runs
    for k in range(1000):
        shares.add(2000.0 + k, np.array([1]), 7)
    assert len(shares._buckets) == 61 and len(shares.snapshot(2999.0)["age_s"]) == 60


def _count_color_pixels(page, label: str) -> int:
    return page.evaluate(
        """(label) => {
             const c = document.getElementById('shares');
             const want = window.ferEdge.colorFor(label);
             const rgb = [1, 3, 5].map((i) => parseInt(want.slice(i, i + 2), 16));
             const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let n = 0;
             for (let i = 0; i < px.length; i += 4) {
               if (Math.abs(px[i] - rgb[0]) < 8 && Math.abs(px[i + 1] - rgb[1]) < 8 && Math.abs(px[i + 2] - rgb[2]) < 8) n++;
             }
             return n;
           }""", label)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Debian's chromium at /usr/bin/chromium")
def test_live_page_draws_the_last_minute_of_label_shares(page, tmp_path, fer_faces, detector_dir,  # noqa: F811
                                                         emotion_model):
    video = write_video(tmp_path / "live.avi", fer_faces, n_frames=80, fps=10.0)  # 8 s in real time
    srv = start_server("--token", TOKEN, "--source", str(video), "--pipelines", "1", "--http-threads", "4")
    try:
        page.goto(f"{srv.url}/live?token={TOKEN}")
        labels = json.loads(page.get_attribute("body", "data-labels"))
        assert page.locator("#shares-legend .swatch").count() == len(labels)
        wait_until(page, "() => Number(document.getElementById('shares').dataset.buckets || 0) >= 3")
        last = json.loads(page.get_attribute("#shares", "data-last"))
        assert set(last) == set(labels) and sum(last.values()) == pytest.approx(1.0)
        top = max(last, key=last.get)
        assert _count_color_pixels(page, top) > 100  # its column is drawn in the overlay's colour
        status, _, body = srv.get("/api/live", TOKEN)
        shares = json.loads(body)["shares"]
        assert status == 200 and shares["window_s"] == 60.0 and 3 <= len(shares["counts"]) <= 60
        assert all(len(c) == len(labels) for c in shares["counts"])
        assert sum(map(sum, shares["counts"])) > 0
        save_screen(page, tmp_path, "7-live-shares")
        page.wait_for_selector("#live-state[data-state=ended]", state="attached", timeout=TIMEOUT_MS)
        page.wait_for_timeout(1500)  # polls after the end keep the chart
        assert int(page.get_attribute("#shares", "data-buckets")) >= 3
        save_screen(page, tmp_path, "8-live-shares-ended")
        assert page.errors == []
    finally:
        assert srv.stop() == 0, srv.output
