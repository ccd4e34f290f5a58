"""`fer-edge report` on a real photo run: photos written by OpenCV from the committed FER faces,
`fer-edge run --out-dir` on the folder, then `fer-edge report` on its results.jsonl."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np

from edge.cli import main as cli_main
from edge.labels import LABELS
from edge_runtime_helpers import fer_faces


def test_report_of_a_photo_folder_lists_each_image_with_its_label_counts(tmp_path, faces_dir, detector_dir,
                                                                          capsys):
    faces, _ = fer_faces(faces_dir, per_class=1)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(5):  # 1, 2, 1, 2, 1 faces, and one photo with none
        image = np.full((480, 640, 3), 150, np.uint8)
        for j, x in enumerate((40, 340)[: 1 + k % 2]):
            image[150:390, x:x + 240] = cv2.cvtColor(cv2.resize(faces[(k + 3 * j) % 7], (240, 240)),
                                                     cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(photos / f"IMG_{k:04d}.jpg"), image)
    cv2.imwrite(str(photos / "IMG_0099.jpg"), np.full((480, 640, 3), 150, np.uint8))
    out = tmp_path / "annotated"
    assert cli_main(["run", "--headless", "--source", str(photos), "--out-dir", str(out)]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert cli_main(["report", str(out / "results.jsonl"), "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    n_faces = sum(len(r["faces"]) for r in records)
    assert f"report: 6 images, {n_faces} faces" in err

    report = tmp_path / "report"
    assert not (report / "timeline.png").exists()
    with open(report / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["file"] for row in rows] == [r["source"] for r in records]
    assert [row["image"] for row in rows] == [str(i) for i in range(1, 7)]
    for row, record in zip(rows, records):
        assert int(row["faces"]) == len(record["faces"])
        for label in LABELS:
            assert int(row[f"count_{label}"]) == sum(face["emotion"] == label for face in record["faces"])
    md = (report / "report.md").read_text()
    assert f"6 images, {n_faces} faces" in md
    assert "| 6 | IMG_0099.jpg | 0 | none |" in md
    assert "tracks" not in md and "held for at least" not in md and "timeline" not in md
