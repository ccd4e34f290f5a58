"""FER+ votes: joining, soft targets, "not a face" exclusion and majority labels on a tiny votes file."""

from __future__ import annotations

import numpy as np
import pytest

from edge.labels import LABELS
from train.data import Split
from train.ferplus import VotesError, default_votes_path, ferplus_targets, load_votes, votes_for

HEADER = "file,split,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,nf,mad,second_mad,ferplus_name\n"
# name -> (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, nf)
ROWS = {
    "train/happy/Training_1.jpg": (0, 10, 0, 0, 0, 0, 0, 0, 0, 0),  # unanimous happy
    "train/sad/Training_2.jpg": (6, 0, 0, 4, 0, 0, 0, 0, 0, 0),  # mostly neutral
    "train/angry/Training_3.jpg": (1, 1, 1, 1, 1, 1, 1, 1, 1, 1),  # all singles: no majority
    "train/fear/Training_4.jpg": (0, 0, 0, 0, 0, 0, 2, 0, 0, 8),  # not a face
    "train/angry/Training_5.jpg": (0, 0, 0, 0, 2, 0, 0, 6, 2, 0),  # contempt majority
    "train/surprise/Training_6.jpg": (0, 0, 5, 0, 0, 0, 4, 0, 1, 0),  # surprise, 5 of 10 after singles: 5/9
}
I = {name: LABELS.index(name) for name in LABELS}


@pytest.fixture()
def votes_csv(tmp_path):
    p = tmp_path / "votes.csv"
    lines = [HEADER] + [f"{f},Training,{','.join(map(str, v))},0.00,40.0,fer{i:07d}.png\n"
                        for i, (f, v) in enumerate(ROWS.items())]
    p.write_text("".join(lines))
    return p


def _split(names, labels):
    n = len(names)
    return Split(np.zeros((n, 48, 48), np.uint8), np.asarray(labels, np.int64), np.asarray(names, str))


def test_votes_join_by_file_or_ferplus_name_in_our_label_order(votes_csv):
    table = load_votes(votes_csv)
    names = list(ROWS) + ["train/neutral/Training_99.jpg"]
    v = votes_for(_split(names, [I["happy"], I["sad"], I["angry"], I["fear"], I["angry"], I["surprise"], I["neutral"]]), table)
    assert v.known.tolist() == [True] * 6 + [False]
    assert v.emotions[0, I["happy"]] == 10 and v.emotions[1, I["neutral"]] == 6 and v.emotions[1, I["sad"]] == 4
    # A CSV layout names rows fer0000000.png ...: the same votes.
    by_row = votes_for(_split([f"fer{i:07d}.png" for i in range(6)], [0] * 6), table)
    np.testing.assert_array_equal(by_row.emotions, v.emotions[:6])


@pytest.mark.parametrize("row, expected", [
    (0, "happy"), (1, "neutral"), (2, None), (3, None), (4, None), (5, "surprise"),
])
def test_majority_follows_ferplus_rule(votes_csv, row, expected):
    v = votes_for(_split(list(ROWS), [0] * 6), load_votes(votes_csv))
    assert v.majority()[row] == (-1 if expected is None else I[expected])


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_soft_targets_mix_label_and_votes_and_drop_non_faces(votes_csv, weight):
    labels = [I["happy"], I["sad"], I["angry"], I["fear"], I["angry"], I["surprise"]]
    names = list(ROWS) + ["train/neutral/Training_99.jpg"]
    labels.append(I["neutral"])
    v = votes_for(_split(names, labels), load_votes(votes_csv))
    y, keep = ferplus_targets(np.asarray(labels), v, weight)
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-6)
    if weight == 0.0:
        assert keep.all()
        np.testing.assert_array_equal(y, np.eye(7, dtype=np.float32)[labels])
        return
    # "not a face" (row 3) and the image without votes (row 6) are dropped.
    assert keep.tolist() == [True, True, True, False, True, True, False]
    # Row 1: labelled sad, annotators 6 neutral / 4 sad.
    assert y[1, I["sad"]] == pytest.approx((1 - weight) + weight * 0.4)
    assert y[1, I["neutral"]] == pytest.approx(weight * 0.6)
    # Row 4: contempt and unknown votes are dropped; only the 2 anger votes remain.
    assert y[4, I["angry"]] == pytest.approx(1.0)


def test_bad_inputs_say_what_to_do(tmp_path, votes_csv):
    with pytest.raises(VotesError, match="--votes"):
        load_votes(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("file,neutral\nx,1\n")
    with pytest.raises(VotesError, match="missing column"):
        load_votes(bad)
    with pytest.raises(VotesError, match="file names"):
        votes_for(Split(np.zeros((1, 48, 48), np.uint8), np.zeros(1, np.int64)), load_votes(votes_csv))
    with pytest.raises(ValueError, match="weight"):
        ferplus_targets(np.zeros(1, np.int64), votes_for(_split(["x"], [0]), {}), 1.5)


@pytest.mark.parametrize("data, expected", [
    ("/d/fer2013", "/d/ferplus/votes.csv"),
    ("/d/fer2013/fer2013.csv", "/d/ferplus/votes.csv"),
])
def test_default_votes_path_sits_beside_the_data(monkeypatch, data, expected):
    monkeypatch.delenv("FER_EDGE_FERPLUS", raising=False)
    assert default_votes_path(data) == expected
