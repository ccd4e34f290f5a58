"""edge.detect.tiling: small faces in large frames, tiles merged across edges, the streaming schedule."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.scenes.crowd import make_group_video, tile_edges
from benchmarks.scenes.synthetic import make_scene_image, paste_face
from edge.capture.readers import read_video_frames
from edge.boxes import iou_matrix, match_boxes
from edge.detect.anchors import SHORT_RANGE, anchor_centres_px, ssd_anchor_centres
from edge.detect.factory import DetectorConfig, make_detector
from edge.detect.frame import BlazeFaceDetector
from edge.detect.motion import CARRY_FRAMES, CARRY_MIN_PX, CONFIDENT_SCORE
from edge.detect.tiling import MAX_WAIT_CYCLES, OVERLAP_PX, TILES_PER_FRAME, REFRESH_FRAMES, TiledDetector, plan_scan
from edge.detect.windows import coarse_window
from edge.interpreter import load_interpreter

SHORT = "blaze_face_short_range.tflite"


@pytest.fixture()
def tiled(detector_dir):
    with TiledDetector(detector_dir / SHORT, num_threads=1) as det:
        yield det


def test_anchor_centres_px_match_the_square_layout_and_the_model(detector_dir):
    np.testing.assert_allclose(anchor_centres_px(SHORT_RANGE, 128, 128), ssd_anchor_centres(SHORT_RANGE) * 128,
                               atol=1e-4)
    interp = load_interpreter(detector_dir / SHORT, num_threads=1)
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, [1, 288, 384, 3])
    interp.allocate_tensors()
    interp.set_tensor(index, np.zeros((1, 288, 384, 3), np.float32))
    interp.invoke()
    n = anchor_centres_px(SHORT_RANGE, 288, 384).shape[0]
    assert sorted(tuple(interp.get_tensor(d["index"]).shape) for d in interp.get_output_details()) == \
        [(1, n, 1), (1, n, 16)]


@pytest.mark.parametrize("height, width", [(1080, 1920), (720, 1280), (480, 640), (1920, 1080)])
def test_every_level_covers_the_frame_with_overlapping_tiles(height, width):
    coarse, tiles = plan_scan(height, width, 40)
    assert coarse.scale == pytest.approx(128 / max(height, width))
    for scale in sorted({t.scale for t in tiles}):
        level = [t for t in tiles if t.scale == scale]
        covered = np.zeros((height, width), np.int32)
        for t in level:
            assert t.height % 16 == 0 and t.width % 16 == 0
            x0, y0 = int(np.ceil(t.x)), int(np.ceil(t.y))
            covered[y0:int(t.y + t.height / scale), x0:int(t.x + t.width / scale)] += 1
        assert covered.min() >= 1, f"level {scale}: part of the frame is never scanned"
        # Neighbouring tiles overlap by at least OVERLAP_PX input pixels.
        xs = sorted({t.x for t in level})
        for a, b in zip(xs, xs[1:]):
            width_in = level[0].width / scale
            assert (a + width_in - b) * scale >= OVERLAP_PX - 1
    # The finest level sees a 40 px face at >= 32 input px.
    if tiles:
        assert max(t.scale for t in tiles) * 40 >= 32 - 1e-6


def test_tiles_find_small_faces_the_whole_frame_pass_misses(detector_dir, faces, tiled):
    images, labels = faces
    image, placed = make_scene_image(images, labels, size=(1920, 1080), faces_per_frame=8, face_px=(64, 110),
                                     seed=3, background="room")
    truth = np.asarray([f.box for f in placed])
    with BlazeFaceDetector(detector_dir / SHORT, num_threads=1) as whole:
        assert len(match_boxes(truth, whole.detect(image).xyxy, 0.3)[0]) == 0
    found = tiled.detect(image)
    ti, di, _ = match_boxes(truth, found.xyxy, 0.3)
    assert len(ti) >= 6, f"tiles found {len(ti)} of 8 faces of 64-110 px"
    assert len(found) - len(ti) <= 1  # few false positives
    assert found.xyxy.dtype == np.int32 and found.keypoints.shape == (len(found), 6, 2)
    # Keypoints of a found face lie inside (or right at) its box, in frame pixels.
    for d in di:
        x1, y1, x2, y2 = found.xyxy[d]
        kp = found.keypoints[d][:4]  # eyes, nose, mouth
        assert ((kp[:, 0] > x1 - 5) & (kp[:, 0] < x2 + 5) & (kp[:, 1] > y1 - 5) & (kp[:, 1] < y2 + 5)).all()


def test_a_face_across_a_tile_edge_is_found_once(faces, tiled):
    images, labels = faces
    rng = np.random.default_rng(0)
    xs, ys = tile_edges((1920, 1080))
    image = np.full((1080, 1920, 3), 150, np.uint8)
    image[:] = rng.integers(120, 180, 3).astype(np.uint8)
    side = 90
    boxes = []
    for k, x_edge in enumerate(xs[:6]):
        # The tile edge runs through the face: a third of it on one side.
        x1 = int(x_edge - side / 3)
        y1 = 150 + (k % 3) * 300
        box = (x1, y1, x1 + side, y1 + side)
        paste_face(image, images[k], box)
        boxes.append(box)
    found = tiled.detect(image)
    overlap = iou_matrix(np.asarray(boxes), found.xyxy)
    hits = (overlap > 0.2).sum(axis=1)
    assert (hits <= 1).all(), f"a face across a tile edge was reported {hits.max()} times"
    assert (hits == 1).sum() >= 4, f"only {(hits == 1).sum()} of 6 faces across tile edges were found"


def test_stream_schedule_then_full_scan_after_reset(tmp_path, faces, tiled):
    images, labels = faces
    truth = make_group_video(tmp_path / "group.mp4", images, labels, size=(1280, 720), n_faces=(5, 5),
                             face_px=(60, 120), n_frames=24, seed=2, late_frac=0.0, occluded_frac=0.0)
    frames = read_video_frames(tmp_path / truth.video)
    _, tiles = tiled.plan(720, 1280)
    found = []
    for i, (image, placed) in enumerate(zip(frames, truth.frames)):
        faces_i = tiled.detect(image)
        kinds = tiled.windows_last_frame
        if i == 0:  # a full scan: every tile, no regions of interest yet
            assert kinds.count("tile") == len(tiles) and "roi" not in kinds
        else:  # the coarse pass, a region per remembered face (or its carried detection), the next tile(s)
            assert kinds[0] == "coarse" and 1 <= kinds.count("tile") < len(tiles)
            assert kinds.count("roi") + tiled.carried_last_frame >= 1
        found.append(len(match_boxes(np.asarray([f.box for f in placed]), faces_i.xyxy, 0.3)[0]))
    assert found[0] >= 3 and min(found[1:]) >= found[0] - 1, found  # faces are kept between full scans
    tiled.reset()
    tiled.detect(frames[0])
    assert tiled.windows_last_frame.count("tile") == len(tiles)


def test_a_face_that_walks_into_a_still_scene_is_found_on_the_next_frame(faces, tiled):
    images, _ = faces
    image = np.full((1080, 1920, 3), 140, np.uint8)
    tiled.detect(image)  # full scan of an empty scene
    for _ in range(3):  # the round-robin moves on; the face's corner is not next in it
        tiled.detect(image)
    box = (1500, 700, 1580, 780)
    paste_face(image, images[4], box)
    found_at = None
    for i in range(3):
        if len(match_boxes(np.asarray([box]), tiled.detect(image).xyxy, 0.3)[0]):
            found_at = i
            break
    assert found_at is not None and found_at <= 1, f"found at frame {found_at} after it appeared"


def test_a_still_face_is_carried_at_most_carry_frames_and_a_moving_one_never(faces, tiled):
    """A face whose surroundings do not change keeps its detection for up to CARRY_FRAMES frames,
    then its window runs again; a face that moves gets its window on every frame."""
    images, _ = faces
    image = np.full((1080, 1920, 3), 140, np.uint8)
    still, moving = (300, 400, 380, 480), [1300, 500, 1380, 580]
    paste_face(image, images[4], still)
    background = image.copy()
    paste_face(image, images[9], tuple(moving))
    assert len(tiled.detect(image)) == 2  # full scan
    rois, carried, boxes = [], [], []
    for _ in range(3 * (CARRY_FRAMES + 1)):
        moving[0] += 12
        moving[2] += 12
        image = background.copy()
        paste_face(image, images[9], tuple(moving))
        found = tiled.detect(image)
        rois.append(tiled.windows_last_frame.count("roi"))
        carried.append(tiled.carried_last_frame)
        boxes.append(found.xyxy)
        assert len(match_boxes(np.asarray([still, moving]), found.xyxy, 0.3)[0]) == 2  # both faces, every frame
    assert all(r >= 1 for r in rois)  # the moving face's window runs on every frame
    runs = [c == 0 for c in carried]  # frames on which the still face's window ran too
    assert any(runs) and not all(runs)
    longest = max(len(s) for s in "".join("r" if r else "c" for r in runs).split("r"))
    assert longest == CARRY_FRAMES, carried  # never carried longer than CARRY_FRAMES in a row


def test_a_still_face_smaller_than_carry_min_px_is_looked_at_every_frame(faces, tiled):
    """In the 8x thumbnail a small face spans too few pixels to show a small drift: never carried."""
    images, _ = faces
    image = np.full((1080, 1920, 3), 140, np.uint8)
    side = CARRY_MIN_PX - 8
    paste_face(image, images[4], (600, 500, 600 + side, 500 + side))
    assert len(tiled.detect(image)) == 1  # full scan
    for _ in range(CARRY_FRAMES + 2):
        assert len(tiled.detect(image)) == 1
        assert tiled.carried_last_frame == 0 and tiled.windows_last_frame.count("roi") == 1


def test_a_still_scene_is_scanned_round_robin(tiled):
    image = np.full((1080, 1920, 3), 140, np.uint8)
    tiled.detect(image)
    _, tiles = tiled.plan(1080, 1920)
    runs = np.zeros(len(tiles), np.int64)
    cycle = int(np.ceil(len(tiles) / TILES_PER_FRAME))
    for _ in range(cycle):
        tiled.detect(image)
        runs[list(tiled.tiles_last_frame)] += 1
    assert (runs >= 1).all() and runs.max() <= 2, runs  # the cycle's last frame may have room to spare


def test_motion_elsewhere_does_not_starve_a_tile(faces, tiled):
    """A region that changes on every frame goes first, yet every tile runs within MAX_WAIT_CYCLES + 1 cycles."""
    rng = np.random.default_rng(0)
    image = np.full((1080, 1920, 3), 140, np.uint8)
    tiled.detect(image)
    _, tiles = tiled.plan(1080, 1920)
    cycle = int(np.ceil(len(tiles) / TILES_PER_FRAME))
    last = np.zeros(len(tiles), np.int64)
    waits = []
    busy = set()
    for i in range(1, 3 * MAX_WAIT_CYCLES * cycle + 1):
        image[100:300, 100:300] = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)  # e.g. a TV screen
        tiled.detect(image)
        ran = list(tiled.tiles_last_frame)
        waits.extend((i - last[ran]).tolist())
        last[ran] = i
        if i == 1:
            busy = set(ran)
    bound = (MAX_WAIT_CYCLES + 1) * cycle
    assert (i - last).max() <= bound and max(waits) <= bound, max(waits)
    moving = [k for k, t in enumerate(tiles) if t.x <= 100 and t.y <= 100 and t.scale == tiles[0].scale]
    assert set(moving) <= busy  # the changed tiles ran first


def test_auto_scan_finds_40_px_faces_in_a_640x360_frame(detector_dir, faces):
    """The default scan covers faces from --min-face-px at every frame size: a 44 px face in a
    640x360 frame, which one whole-frame pass cannot see, is found on the first frame."""
    images, labels = faces
    image, truth = make_scene_image(images, labels, size=(640, 360), faces_per_frame=2, face_px=(44, 48), seed=3)
    placed = np.array([f.box for f in truth], np.float32)
    with BlazeFaceDetector(detector_dir / SHORT, num_threads=1, score_threshold=0.5) as whole:
        assert len(whole.detect(image)) == 0
    with make_detector(DetectorConfig(model_path=str(detector_dir / SHORT)), threads=1) as det:
        found = det.detect(image)
    det_idx, _, _ = match_boxes(placed, found.xyxy.astype(np.float32), 0.3)
    assert len(det_idx) == len(placed), (found.xyxy, placed)


def test_a_small_frame_rescans_its_level_only_where_it_changed_or_when_due(detector_dir, faces):
    """640x480: the 40 px level is one window that fits one frame's budget, so a still scene does
    not rescan it every frame (trickle), but at least every REFRESH_FRAMES frames, and at once
    where the frame changed."""
    image = np.full((480, 640, 3), 140, np.uint8)
    with TiledDetector(detector_dir / SHORT, num_threads=1) as det:
        _, tiles = det.plan(480, 640)
        assert len(tiles) == 1 and (tiles[0].width, tiles[0].height) == (512, 384)
        det.detect(image)  # the full scan
        runs = []
        for _ in range(REFRESH_FRAMES):
            det.detect(image)
            runs.append(len(det.tiles_last_frame))
        assert sum(runs) == 1 and runs[-1] == 1, runs
        for _ in range(20):  # the credit for changed tiles builds up while nothing changes
            det.detect(image)
        moved = image.copy()
        moved[200:280, 300:380] = 30
        det.detect(moved)
        assert det.tiles_last_frame == (0,)


def test_tiles_need_the_short_range_model(detector_dir):
    with pytest.raises(ValueError, match="short-range"):
        TiledDetector(detector_dir / "face_detection_full_range_sparse.tflite")
    with pytest.raises(ValueError, match="short"):
        make_detector(DetectorConfig(range="full", model_path=str(detector_dir), scan="tiles"))
    with pytest.raises(ValueError, match="min_face_px"):
        plan_scan(1080, 1920, 0)


def test_coarse_window_is_the_letterbox():
    win = coarse_window(480, 640)
    assert win.scale == pytest.approx(0.2)
    assert win.x == pytest.approx(0.0) and win.y == pytest.approx(-80.0)  # 16 input px of padding on top


def test_tiles_per_frame_sets_the_scan_budget(detector_dir):
    image = np.full((1080, 1920, 3), 140, np.uint8)
    with TiledDetector(detector_dir / SHORT, num_threads=1, tiles_per_frame=3) as det:
        det.detect(image)  # the full scan
        det.detect(image)
        assert det.windows_last_frame.count("tile") == 3
    with pytest.raises(ValueError, match="tiles_per_frame"):
        TiledDetector(detector_dir / SHORT, tiles_per_frame=0)


def test_carry_frames_must_not_be_negative(detector_dir):
    with pytest.raises(ValueError, match="carry_frames"):
        TiledDetector(detector_dir / SHORT, carry_frames=-1)


def _portrait(images, face: int, size: int = 350, side: int = 300) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A photo that one face fills, as a face crop of a portrait is: (size, size, 3) BGR and its square."""
    image = np.full((size, size, 3), 120, np.uint8)
    x = (size - side) // 2
    box = (x, x, x + side, x + side)
    paste_face(image, images[face], box)
    return image, box


def _sure_portrait(images, tiled, lo: float = CONFIDENT_SCORE, hi: float = 1.0
                   ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The first of the faces whose portrait the coarse pass scores in [lo, hi) (default: sure)."""
    for face in range(len(images)):
        image, box = _portrait(images, face)
        coarse, _ = tiled.plan(*image.shape[:2])
        _, _, scores = tiled._nets.run(image, coarse, 0.0)
        if len(scores) and lo <= scores.max() < hi:
            return image, box
    raise AssertionError(f"no portrait the coarse pass scores in [{lo}, {hi})")


def test_a_still_that_one_face_fills_skips_the_level_windows(faces, tiled):
    """A portrait's sure face covers the level window: a full scan runs the coarse pass (and the
    face's looks) only, and finds the face; the same face as a smaller part of the frame leaves the
    level window open."""
    images, _ = faces
    image, box = _sure_portrait(images, tiled)
    assert tiled.plan(*image.shape[:2])[1], "a 350 px photo has a level window"
    tiled.reset()
    found = tiled.detect(image)
    assert "tile" not in tiled.windows_last_frame and tiled.tiles_last_frame == ()
    assert len(found) == 1 and iou_matrix(np.asarray([box]), found.xyxy)[0, 0] > 0.3
    framed = np.full((700, 700, 3), 120, np.uint8)  # the same face, a quarter of the photo's area
    framed[175:525, 175:525] = image
    tiled.reset()
    tiled.detect(framed)
    assert "tile" in tiled.windows_last_frame


def test_a_group_photo_with_one_large_face_keeps_its_small_faces(faces, tiled):
    """A large sure face leaves most of a group photo's level windows open: the 40-56 px faces
    beside it are still found."""
    images, labels = faces
    group, placed = make_scene_image(images[:5], labels[:5], size=(900, 720), faces_per_frame=5, face_px=(44, 56),
                                     seed=5, background="room")
    image = np.full((720, 1280, 3), 120, np.uint8)
    image[:, :900] = group
    big, _ = _sure_portrait(images, tiled)
    image[360:710, 920:1270] = big  # a large face beside the small ones
    truth = np.asarray([f.box for f in placed])
    tiled.reset()
    found = tiled.detect(image)
    assert len(tiled.tiles_last_frame) >= len(tiled.plan(720, 1280)[1]) - 2
    ti, _, _ = match_boxes(truth, found.xyxy, 0.3)
    assert len(ti) >= 4, f"{len(ti)} of 5 small faces found beside the large one"


def test_a_stream_runs_the_skipped_level_windows_next(faces, tiled):
    """On a stream's first frame the portrait skips its level window; the next frame runs it, so a
    small face that the first frame could not see is looked for at once."""
    images, _ = faces
    image, _ = _sure_portrait(images, tiled)
    tiled.reset()
    tiled.detect(image)
    assert tiled.tiles_last_frame == ()
    tiled.detect(image)
    assert tiled.tiles_last_frame == (0,)


def test_a_portrait_the_coarse_pass_is_unsure_of_is_confirmed_first_and_skips_the_level(faces, tiled):
    """A face that fills the photo but scores under the sure score in the coarse pass gets its
    second look before the levels: confirmed, it covers the level window, which is skipped, and it
    is reported once, without a second look again."""
    images, _ = faces
    image, box = _sure_portrait(images, tiled, lo=tiled.score_threshold, hi=CONFIDENT_SCORE)
    tiled.reset()
    looks = tiled.second_look.looks
    found = tiled.detect(image)
    assert "tile" not in tiled.windows_last_frame
    assert len(found) == 1 and iou_matrix(np.asarray([box]), found.xyxy)[0, 0] > 0.3
    assert 1 <= tiled.second_look.looks - looks <= 2  # one second look (one or two windows), not two
