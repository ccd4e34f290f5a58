"""Which OpenCV build is installed, and what `fer-edge run` does with a headless one (the Pi's)."""

from __future__ import annotations

import importlib.metadata as md
import re

import cv2
import pytest

from edge.cli import main as cli_main
from edge.cli.run import opencv_has_gui


def _opencv_distributions() -> set[str]:
    return {d.metadata["Name"].lower() for d in md.distributions()
            if d.metadata["Name"] and d.metadata["Name"].lower().startswith("opencv")}


def test_gui_support_matches_the_installed_opencv_distribution():
    dists = _opencv_distributions()
    if len(dists) != 1:
        pytest.skip(f"not exactly one OpenCV distribution installed: {sorted(dists)}")
    headless = next(iter(dists)).endswith("-headless")
    assert opencv_has_gui() is (not headless)
    assert opencv_has_gui(cv2.getBuildInformation()) is (not headless)


def test_a_headless_build_information_says_no_gui():
    real = cv2.getBuildInformation()
    assert re.search(r"^\s*GUI:", real, re.M), "OpenCV's build information has no GUI line"
    headless = re.sub(r"^(\s*GUI:\s*)\S+.*$", r"\1NONE", real, count=1, flags=re.M)
    assert opencv_has_gui(headless) is False


def test_window_mode_on_a_headless_build_names_the_ways_out(tmp_path, capsys, monkeypatch):
    if opencv_has_gui():
        pytest.skip("this OpenCV has a GUI (the check only bites on the Pi's headless build)")
    monkeypatch.setenv("DISPLAY", ":0")
    photo = tmp_path / "x.png"
    cv2.imwrite(str(photo), 255 * (cv2.getGaussianKernel(64, 8) @ cv2.getGaussianKernel(64, 8).T))
    assert cli_main(["run", "--source", str(photo)]) == 2
    err = capsys.readouterr().err
    assert "headless build" in err and "--headless" in err and "fer-edge serve" in err
