"""`fer-edge report`, edge.report.read and edge.report.summary on runs whose contents are known exactly.

The JSONL files are written by the runtime's own JsonlSink and frame_record from FrameResults,
so they have exactly the format `fer-edge run` writes.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main as cli_main
from edge.labels import LABELS
from edge.outputs.overlay import label_color
from edge.report.read import ReportError, load_jsonl, read_run
from edge.report.summary import make_report
from edge.report.types import ReportConfig
from edge.outputs.sinks import JsonlSink
from edge.types import Faces, Frame, FrameResult

REPO = Path(__file__).resolve().parents[3]
FPS = 10.0
IMAGE = np.zeros((720, 1280, 3), np.uint8)  # frame_record reads no pixels; the size is realistic


def onehot(label: str, p: float = 0.8) -> np.ndarray:
    v = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1), np.float32)
    v[LABELS.index(label)] = p
    return v


def result(index: int, t: float, faces: list[tuple[int, str, int]], source: str = "") -> FrameResult:
    """faces: (track id, label, x) per face, 200 px boxes on a 1280x720 frame."""
    n = len(faces)
    xyxy = np.asarray([[x, 200, x + 200, 400] for _, _, x in faces], np.int32).reshape(n, 4)
    probs = np.stack([onehot(lab) for _, lab, _ in faces]) if n else np.zeros((0, len(LABELS)), np.float32)
    return FrameResult(
        frame=Frame(IMAGE, index=index, t=t, source=source),
        faces=Faces(xyxy, np.full(n, 0.9, np.float32), np.zeros((n, 6, 2), np.float32)),
        track_ids=np.asarray([i for i, _, _ in faces], np.int64),
        probs=probs, labels=LABELS, label_index=np.argmax(probs, axis=1))


def known_run(path: Path, start: int = 0) -> Path:
    """Track 1: happy for 6 s then sad for 4 s. Track 2: neutral from 2 s to 6 s. 10 frames/s."""
    with JsonlSink(path, append=start > 0) as sink:
        for i in range(100):
            faces = [(1, "happy" if i < 60 else "sad", 100)]
            if 20 <= i < 60:
                faces.append((2, "neutral", 700))
            sink.write(result(i, i / FPS, faces))
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def run_jsonl(tmp_path) -> Path:
    return known_run(tmp_path / "run.jsonl")


def test_report_writes_the_four_files_with_the_known_answers(run_jsonl, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli_main(["report", str(run_jsonl), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "100 frames, 140 faces, 2 tracks" in err and str(out / "report.md") in err
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "report.md", "summary.csv", "timeline.png"]

    summary = read_csv(out / "summary.csv")
    assert [(r["segment"], r["track_id"]) for r in summary] == [("1", "1"), ("1", "2")]  # longest first
    one, two = summary
    assert (float(one["first_s"]), float(one["last_s"]), int(one["frames"])) == (0.0, 9.9, 100)
    assert float(one["seen_s"]) == pytest.approx(10.0)
    assert float(one["share_happy"]) == pytest.approx(0.6) and float(one["share_sad"]) == pytest.approx(0.4)
    assert one["dominant"] == "happy" and one["label_changes"] == "1"
    assert float(one["mean_confidence"]) == pytest.approx(0.8, abs=1e-4)
    assert (float(two["first_s"]), float(two["last_s"]), float(two["seen_s"])) == (2.0, 5.9, pytest.approx(4.0))
    assert two["dominant"] == "neutral" and float(two["share_neutral"]) == 1.0 and two["label_changes"] == "0"

    frames = read_csv(out / "frames.csv")
    assert len(frames) == 140
    assert list(frames[0]) == ["segment", "frame", "t", "source", "track_id", "x1", "y1", "x2", "y2", "score",
                               "emotion", "confidence", *(f"p_{x}" for x in LABELS)]
    records = [json.loads(line) for line in run_jsonl.read_text().splitlines()]
    flat = [(r["frame"], f) for r in records for f in r["faces"]]
    for row, (frame, face) in zip(frames, flat):
        assert int(row["frame"]) == frame and int(row["track_id"]) == face["id"]
        assert [int(row[k]) for k in ("x1", "y1", "x2", "y2")] == face["box"]
        assert row["emotion"] == face["emotion"]
        assert [float(row[f"p_{x}"]) for x in LABELS] == pytest.approx([face["probs"][x] for x in LABELS])

    md = (out / "report.md").read_text()
    for link in ("[timeline.png](timeline.png)", "[summary.csv](summary.csv)", "[frames.csv](frames.csv)"):
        assert link in md
    # Video-level shares: 6 s happy, 4 s sad, 4 s neutral out of 14 face-seconds.
    assert "| 0.0 % | 0.0 % | 0.0 % | 42.9 % | 28.6 % | 0.0 % | 28.6 % |" in md
    assert "| #1 | 0.0 | 9.9 | 10.0 | 100 | happy | 60.0 % |" in md
    assert "- #1: happy 0.0-6.0 s; sad 6.0-10.0 s" in md and "- #2: neutral 2.0-6.0 s" in md


def _png_text(path: Path) -> dict:
    from PIL import Image

    with Image.open(path) as im:
        return dict(im.text)


def _has_color(image_bgr: np.ndarray, bgr: tuple[int, int, int], tol: int = 12) -> int:
    return int(np.all(np.abs(image_bgr.astype(int) - np.array(bgr)) <= tol, axis=2).sum())


@pytest.mark.parametrize("top, title_words", [(6, "all 2 tracks"), (1, "top 1 of 2 tracks by time on screen")])
def test_timeline_shows_the_top_tracks_in_the_overlay_colours_and_says_so(run_jsonl, tmp_path, top, title_words):
    out = tmp_path / f"top{top}"
    make_report(run_jsonl, out, ReportConfig(top=top))
    png = out / "timeline.png"
    assert title_words in _png_text(png)["Title"]
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] == 1100
    area = {x: _has_color(image, label_color(x, LABELS.index(x))) for x in ("happy", "sad", "neutral")}
    assert area["sad"] > 0.5 * area["happy"] > 0  # track 1: 6 s happy, then 4 s sad
    if top == 1:  # track 2 (all neutral) is left out: neutral is only track 1's thin band of 3 %
        assert area["neutral"] < 0.1 * area["happy"]
    else:
        assert area["neutral"] > 0.4 * area["happy"]
    md = (out / "report.md").read_text()
    assert ("## Tracks (all 2," if top > 1 else "## Tracks (top 1 of 2,") in md


def test_malformed_lines_are_reported_with_their_numbers_and_the_rest_is_kept(run_jsonl, tmp_path, capsys):
    lines = run_jsonl.read_text().splitlines()
    good = json.loads(lines[5])
    bad_emotion = dict(good, faces=[dict(good["faces"][0], emotion="bored")])
    broken = [
        (3, "this is not json"),
        (10, lines[9][: len(lines[9]) // 2]),  # cut short, as by a crash mid-write
        (20, json.dumps({"frame": 19, "t": 1.9})),  # no faces
        (30, json.dumps(bad_emotion)),
        (40, json.dumps(dict(good, faces=[dict(good["faces"][0], box=[1, 2, "3", 4])]))),
    ]
    for number, text in broken:
        lines[number - 1] = text
    lines.insert(50, "")  # a blank line is not an error, but it is a line: later numbers shift by one
    path = tmp_path / "damaged.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "report"
    assert cli_main(["report", str(path), "--out", str(out), "--no-chart"]) == 0
    err = capsys.readouterr().err
    for number, words in [(3, "not JSON"), (10, "not JSON"), (20, "no 'faces' field"),
                          (30, "face 0: emotion 'bored' is not one of the labels"), (40, "face 0: 'box' holds a value")]:
        assert f"line {number}: {words}" in err, err
    assert "95 frames" in err and "5 malformed line(s) skipped" in err
    md = (out / "report.md").read_text()
    assert "**5 malformed lines skipped**: line 3, 10, 20, 30, 40." in md
    assert len(read_csv(out / "frames.csv")) == 140 - 5 - 2  # frames 29 and 39 also held track 2

    assert cli_main(["report", str(path), "--out", str(tmp_path / "strict"), "--strict", "--no-chart"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "line 3: not JSON" in err and "Traceback" not in err
    assert not (tmp_path / "strict" / "report.md").exists()


@pytest.mark.parametrize("content, words", [
    (None, "no such file"),
    ("", "no valid record in 0 line"),
    ("garbage\n{\"frame\": 1}\n", "no valid record in 2 line(s); line 1: not JSON"),
])
def test_a_file_with_nothing_to_report_is_a_clear_error(tmp_path, capsys, content, words):
    path = tmp_path / "run.jsonl"
    if content is not None:
        path.write_text(content)
    assert cli_main(["report", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"fer-edge report: error: {path}: {words}" in err


def test_runs_appended_to_one_file_are_separate_segments(tmp_path):
    path = known_run(tmp_path / "service.jsonl")
    known_run(path, start=1)  # a restarted service: frames and ids start again
    out = tmp_path / "r"
    outcome = make_report(path, out)
    assert outcome.log.n_segments == 2 and outcome.log.n_frames == 200
    summary = read_csv(out / "summary.csv")
    assert sorted((r["segment"], r["track_id"]) for r in summary) == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    md = (out / "report.md").read_text()
    assert "2 runs appended to one file" in md and "| 2:#1 |" in md


def test_folder_runs_get_a_per_image_table_and_no_timeline(tmp_path):
    path = tmp_path / "results.jsonl"
    with JsonlSink(path) as sink:
        for i, label in enumerate(["happy", "sad", "happy"]):
            sink.write(result(i, float(i), [(1, label, 300)], source=f"photos/img{i}.jpg"))
    out = tmp_path / "r"
    outcome = make_report(path, out)
    assert outcome.log.images
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "report.md", "summary.csv"]  # no timeline
    assert [r["source"] for r in read_csv(out / "frames.csv")] == [f"photos/img{i}.jpg" for i in range(3)]
    rows = read_csv(out / "summary.csv")
    assert [(r["image"], r["file"], r["faces"], r["dominant"]) for r in rows] == [
        ("1", "photos/img0.jpg", "1", "happy"), ("2", "photos/img1.jpg", "1", "sad"), ("3", "photos/img2.jpg", "1", "happy")]
    md = (out / "report.md").read_text()
    assert "3 images, 3 faces" in md and "| 2 | img1.jpg | 1 | sad 1 |" in md
    assert "track" not in md and "Moments" not in md and "timeline" not in md


def test_load_jsonl_returns_plain_columns_without_pandas(run_jsonl):
    cols = load_jsonl(run_jsonl, as_frame=False)
    assert isinstance(cols, dict) and len(cols["frame"]) == 140
    assert cols["track_id"].dtype == np.int64 and cols["p_happy"].dtype == np.float32
    assert cols["emotion"][0] == "happy" and cols["t"][-1] == pytest.approx(9.9)


def test_load_jsonl_gives_a_dataframe_when_pandas_is_installed(run_jsonl):
    pd = pytest.importorskip("pandas", reason="pandas is optional: pip install 'fer-edge[report]'")
    df = load_jsonl(run_jsonl)
    assert isinstance(df, pd.DataFrame) and len(df) == 140
    assert df.groupby("track_id")["frame"].count().to_dict() == {1: 100, 2: 40}
    assert (df[df.track_id == 1].emotion == "happy").sum() == 60


def _python(code: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter where importing `blocked` fails, as on a plain install."""
    block = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
    return subprocess.run([sys.executable, "-c", block + code], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_without_pandas_and_matplotlib_the_columns_and_csvs_still_work(run_jsonl, tmp_path):
    out = tmp_path / "r"
    code = (f"from edge.report.read import load_jsonl\ncols = load_jsonl({str(run_jsonl)!r})\n"
            "assert isinstance(cols, dict), type(cols)\n"
            f"from edge.cli import main\nraise SystemExit(main(['report', {str(run_jsonl)!r}, '--out', {str(out)!r}, "
            "'--no-chart']))\n")
    proc = _python(code, ("pandas", "matplotlib"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "report.md", "summary.csv"]


def test_without_matplotlib_the_chart_is_a_clear_error_that_says_what_to_install(run_jsonl, tmp_path):
    out = tmp_path / "r"
    code = (f"from edge.cli import main\nraise SystemExit(main(['report', {str(run_jsonl)!r}, '--out', {str(out)!r}]))\n")
    proc = _python(code, ("matplotlib",))
    assert proc.returncode == 2
    assert "timeline.png needs matplotlib: pip install '.[report]' (in " in proc.stderr
    assert "--no-chart" in proc.stderr and "Traceback" not in proc.stderr


def test_importing_edge_report_loads_neither_pandas_nor_matplotlib():
    proc = _python("import sys, edge.report.read, edge.report.summary, edge.report.cli\n"
                   "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'matplotlib')))", ())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_long_file_gets_a_progress_bar(run_jsonl, capsys):
    read_run(run_jsonl, progress=True)
    assert "reading run.jsonl" in capsys.readouterr().err


def test_strict_read_raises_with_the_line_number(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"frame": 0, "t": 0.0, "faces": []}) + "\n[1, 2]\n")
    with pytest.raises(ReportError, match="line 2: not a JSON object"):
        read_run(path, strict=True)
    assert read_run(path).n_bad == 1


def test_reading_and_writing_in_chunks_gives_the_same_tables(run_jsonl, tmp_path, monkeypatch):
    from edge.report import read, summary

    whole = read_run(run_jsonl)
    summary.write_frames_csv(whole, tmp_path / "whole.csv")
    monkeypatch.setattr(read._Columns, "CHUNK", 7)  # a long file's path on a short one
    chunked = read_run(run_jsonl)
    summary.write_frames_csv(chunked, tmp_path / "chunked.csv", chunk=9)
    for name in ("frame", "t", "segment", "row_frame", "track_id", "box", "label", "probs", "confidence"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name), err_msg=name)
    assert (tmp_path / "whole.csv").read_text() == (tmp_path / "chunked.csv").read_text()


def test_report_files_get_the_users_umask_like_any_other_file(run_jsonl, tmp_path):
    old = os.umask(0o022)
    try:
        outcome = make_report(run_jsonl, tmp_path / "r")
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in outcome.paths.values()} == {
        "timeline.png": 0o644, "summary.csv": 0o644, "frames.csv": 0o644, "report.md": 0o644}
    assert [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".")] == []  # no temporary left
