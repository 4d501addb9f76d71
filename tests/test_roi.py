"""``--roi``: the box (parsing, pixels, the model's input cut from a frame) and ``--roi auto``'s
box (steady on a moving square, back to the whole picture when nothing moves)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from movinet_pi.errors import MovinetPiError
from movinet_pi.sources.base import Frame
from movinet_pi.sources.roi import (
    AUTO,
    WHOLE,
    crop,
    is_whole,
    lores_for_box,
    mirrored,
    model_input,
    parse_roi,
    pixel_rect,
    sensor_crop,
)
from movinet_pi.sources.roi_auto import AGE_HOLD, AutoRoi, AutoRoiSettings

MODEL = (172, 172)

# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "box"), [
    ("0.25,0.25,0.5,0.5", (0.25, 0.25, 0.5, 0.5)),
    (" 0.1 , 0.2 , 0.3 , 0.4 ", (0.1, 0.2, 0.3, 0.4)),
    ("0.5,0,0.5,1", (0.5, 0.0, 0.5, 1.0)),
    ("0.6,0.6,0.4000001,0.4", (0.6, 0.6, 0.4, 0.4)),  # a rounding past the edge is the edge
    ("0,0,1,1", WHOLE),
])
def test_a_box_is_four_fractions(text: str, box: tuple[float, ...]) -> None:
    assert parse_roi(text) == pytest.approx(box)


@pytest.mark.parametrize("text", ["auto", "AUTO", " Auto "])
def test_auto_is_the_box_that_follows(text: str) -> None:
    assert parse_roi(text) == AUTO


@pytest.mark.parametrize(("text", "says"), [
    ("", "expected X,Y,W,H"),
    ("0.5,0.5", "expected X,Y,W,H"),
    ("0.1,0.1,0.5,0.5,0.5", "expected X,Y,W,H"),
    ("a,b,c,d", "expected X,Y,W,H"),
    ("100,100,200,200", "must end inside the picture"),
    ("0.6,0,0.6,1", "must end inside the picture"),
    ("0,0.5,1,0.6", "must end inside the picture"),
    ("-0.1,0,0.5,0.5", "X and Y"),
    ("0,0,0,0.5", "W and H"),
    ("0,0,0.5,-1", "W and H"),
    ("nan,0,0.5,0.5", "finite"),
    ("0,0,inf,1", "finite"),
])
def test_a_bad_box_gets_one_line_saying_what_is_wanted(text: str, says: str) -> None:
    with pytest.raises(MovinetPiError) as info:
        parse_roi(text)
    message = str(info.value)
    assert says in message and "\n" not in message and repr(text.strip()) in message


# --- the box in pixels -----------------------------------------------------------------------


def test_pixels_of_a_box_stay_inside_and_are_never_empty() -> None:
    assert pixel_rect((0.25, 0.25, 0.5, 0.5), 640, 480) == (160, 120, 480, 360)
    assert pixel_rect((0.999, 0.999, 0.001, 0.001), 640, 480) == (639, 479, 640, 480)
    assert pixel_rect(WHOLE, 172, 172) == (0, 0, 172, 172)
    picture = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    part = crop(picture, (0.5, 0.25, 0.25, 0.5))
    assert part.shape == (24, 16, 3) and np.shares_memory(part, picture)  # a view, no copy
    np.testing.assert_array_equal(part, picture[12:36, 32:48])


def test_whole_and_mirrored_boxes() -> None:
    assert is_whole(None) and is_whole(WHOLE) and not is_whole((0, 0, 1, 0.99))
    assert mirrored((0.1, 0.2, 0.3, 0.4)) == pytest.approx((0.6, 0.2, 0.3, 0.4))


def test_a_box_in_sensor_pixels_is_inside_the_maximum() -> None:
    main = (576, 0, 3456, 2592)  # a 4:3 picture from a 16:9 sensor
    assert sensor_crop((0.25, 0.25, 0.5, 0.5), main, (0, 0, 4608, 2592)) == (1440, 648, 1728,
                                                                             1296)
    assert sensor_crop((0.0, 0.0, 1.0, 1.0), (0, 0, 4700, 2592), (0, 0, 4608, 2592)) == (
        0, 0, 4608, 2592)


def test_a_lores_stream_for_a_box_holds_the_model_input_in_the_box() -> None:
    width, height = lores_for_box((0.25, 0.25, 0.5, 0.5), MODEL, (640, 480))
    assert width % 2 == 0 and height % 2 == 0
    x0, y0, x1, y1 = pixel_rect((0.25, 0.25, 0.5, 0.5), width, height)
    assert x1 - x0 >= MODEL[0] and y1 - y0 >= MODEL[1]
    assert lores_for_box((0.4, 0.4, 0.2, 0.2), MODEL, (640, 480)) == (640, 480)  # at most main


# --- the model's input ----------------------------------------------------------------------------


def picture(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


BOX = (0.25, 0.125, 0.5, 0.625)


def resized(rgb: np.ndarray, size: tuple[int, int] = MODEL) -> np.ndarray:
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def test_the_model_reads_the_resized_crop_of_a_bgr_frame() -> None:
    bgr = picture()
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    got = model_input(Frame.from_bgr(bgr, 0.0, 0), MODEL, BOX)
    np.testing.assert_array_equal(got, resized(crop(rgb, BOX)))  # bit for bit
    np.testing.assert_array_equal(model_input(Frame.from_bgr(bgr, 0.0, 0), MODEL),
                                  resized(rgb))  # no box: the whole picture, as before


def test_the_model_reads_the_crop_of_an_rgb_frame() -> None:
    rgb = picture()
    np.testing.assert_array_equal(model_input(Frame(rgb, 0.0, 0), MODEL, BOX), crop(rgb, BOX))


def test_a_large_enough_isp_picture_is_cut_instead_of_the_frame() -> None:
    bgr, lores = picture(), picture(400, 400, seed=1)
    frame = Frame.from_bgr(bgr, 0.0, 0, model_rgb_of=lambda: lores)
    np.testing.assert_array_equal(model_input(frame, MODEL, (0.25, 0.25, 0.5, 0.5)),
                                  lores[100:300, 100:300])
    small = picture(172, 172, seed=2)  # at the model's size: a box of it would be enlarged
    frame = Frame.from_bgr(bgr, 0.0, 0, model_rgb_of=lambda: small)
    np.testing.assert_array_equal(model_input(frame, MODEL, BOX),
                                  resized(crop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), BOX)))
    np.testing.assert_array_equal(model_input(frame, MODEL), small)  # whole: the ISP's


def test_an_isp_crop_is_read_as_it_is() -> None:
    cropped = picture(172, 172, seed=3)
    frame = Frame.from_bgr(picture(), 0.0, 0, model_rgb_of=lambda: cropped, model_box=BOX)
    assert model_input(frame, MODEL, BOX) is cropped
    # a model with a larger input than the ISP's crop cuts the frame instead
    assert model_input(frame, (224, 224), BOX).shape == (224, 224, 3)


# --- --roi auto ---------------------------------------------------------------------------------


def square_scene(x: float, y: float, size: int = 60, seed: int = 0) -> np.ndarray:
    """A still grey room with a little sensor noise and a white square at (x, y)."""
    rng = np.random.default_rng(seed)
    room = np.full((480, 640, 3), 90, np.uint8)
    room[:, 320:] = 140  # a wall and a door
    noisy = np.clip(room + rng.normal(0, 2, room.shape), 0, 255).astype(np.uint8)
    noisy[round(y):round(y) + size, round(x):round(x) + size] = 255
    return noisy


def inside(box: tuple[float, ...], x: float, y: float, size: int) -> bool:
    x0, y0, x1, y1 = pixel_rect(box, 640, 480)  # type: ignore[arg-type]
    return x0 <= x and y0 <= y and x + size <= x1 and y + size <= y1


def seen(box: tuple[float, ...], x: float, y: float, size: int) -> float:
    """How much of the square at (x, y) is in the box."""
    x0, y0, x1, y1 = pixel_rect(box, 640, 480)  # type: ignore[arg-type]
    w = max(0.0, min(x1, x + size) - max(x0, x))
    h = max(0.0, min(y1, y + size) - max(y0, y))
    return w * h / size**2


def moves(boxes: list[tuple[float, ...]]) -> int:
    """Steps where a side of the box moved by more than 5 % of its size."""
    count = 0
    for a, b in zip(boxes, boxes[1:]):
        sizes = (max(a[2], b[2]), max(a[3], b[3])) * 2
        edges = zip((a[0], a[1], a[0] + a[2], a[1] + a[3]), (b[0], b[1], b[0] + b[2], b[1] + b[3]))
        count += any(abs(p - q) > 0.05 * s for (p, q), s in zip(edges, sizes))
    return count


def follow(path: list[tuple[float, float]], settings: AutoRoiSettings | None = None
           ) -> tuple[list[tuple[float, ...]], AutoRoi]:
    """The boxes for a square along ``path`` (one place a step, 5 steps a second)."""
    roi = AutoRoi(MODEL, settings)
    return [roi.update(square_scene(x, y, seed=i), i / 5) for i, (x, y) in enumerate(path)], roi


def test_the_box_is_steady_on_an_action_in_place() -> None:
    settings = AutoRoiSettings()
    # 20 s of a square circling a spot (a person exercising, juggling, playing)
    path = [(200 + 40 * np.cos(i / 5 * np.pi), 220 + 30 * np.sin(i / 5 * np.pi))
            for i in range(100)]
    boxes, roi = follow(path, settings)
    zoomed = [i for i, box in enumerate(boxes) if not is_whole(box)]
    # found once it has moved for shrink_after_s (and two frames, to see motion at all), not
    # sooner: the box shrinks from the whole picture only when the target stayed smaller
    wait = round(settings.shrink_after_s * 5)
    assert zoomed and wait + 1 <= zoomed[0] <= wait + 2
    assert zoomed == list(range(zoomed[0], 100))  # and kept from then on
    assert all(inside(boxes[i], *path[i], 60) for i in zoomed)  # always in the box
    sizes = [pixel_rect(boxes[i], 640, 480) for i in zoomed]
    assert all(x1 - x0 >= MODEL[0] - 1 and y1 - y0 >= MODEL[1] - 1 for x0, y0, x1, y1 in sizes)
    assert moves(boxes) <= 20 / 4 and roi.moves == moves(boxes)  # far under one a second


def test_the_box_follows_a_walking_square_and_keeps_it_in_view() -> None:
    # 20 s: the square walks right and back at 30 px a second
    path = [(100 + 30 * (t if t < 10 else 20 - t), 200 + 20 * np.sin(t))
            for t in (i / 5 for i in range(100))]
    boxes, _ = follow(path)
    zoomed = [i for i, box in enumerate(boxes) if not is_whole(box)]
    assert zoomed and zoomed[-1] == 99
    # it grows as the square goes (the motion seen is one step behind the square's front)
    assert all(seen(boxes[i], *path[i], 60) >= 0.8 for i in zoomed)
    assert all(is_whole(box) or box[2] < 0.9 for box in boxes)  # a box, not the whole room


def test_the_box_grows_at_once_when_the_action_leaves_it() -> None:
    roi = AutoRoi(MODEL)
    for step in range(15):  # a square jiggling in the top left corner
        box = roi.update(square_scene(60 + 10 * (step % 2), 60, seed=step), step / 5)
    assert not is_whole(box) and inside(box, 60, 60, 60)
    box = roi.update(square_scene(500, 380, seed=99), 3.0)  # it jumps to the far corner
    assert inside(box, 500, 380, 60) and inside(box, 70, 60, 60)  # one step later: both in


def test_when_nothing_moves_the_box_goes_back_to_the_whole_picture() -> None:
    settings = AutoRoiSettings()
    roi = AutoRoi(MODEL, settings)
    t = 0.0
    for step in range(15):
        t = step / 5
        box = roi.update(square_scene(200 + 8 * step, 200, seed=step), t)
    assert not is_whole(box)
    still, steps = [], round(settings.hold_s * 5) + 2
    for step in range(steps):  # the square stays where it is: only the sensor noise changes
        t += 0.2
        still.append(roi.update(square_scene(200 + 8 * 14, 200, seed=100 + step), t))
    hold = round(settings.hold_s * 5)
    assert not any(map(is_whole, still[:hold - 1]))  # it keeps its place for hold_s...
    assert is_whole(still[-1])  # ...and after hold_s without any motion, it is the whole picture


def shared_part(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The part of the union of two boxes that both cover."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def test_a_move_to_a_box_sharing_under_half_with_the_last_is_a_new_view() -> None:
    settings = AutoRoiSettings()
    roi = AutoRoi(MODEL, settings)
    # 8 s: a square walks right (the box grows with it), then stands still until the
    # box goes back to the whole picture
    path = [(100 + 12 * min(step, 25), 200) for step in range(40 + round(settings.hold_s * 5))]
    boxes, new_views = [], []
    for step, (x, y) in enumerate(path):
        boxes.append(roi.update(square_scene(x, y, seed=step), step / 5))
        new_views.append(roi.new_view)
    changes = [i for i in range(1, len(boxes)) if boxes[i] != boxes[i - 1]]
    assert len(changes) >= 4  # found, grown a few times, back to the whole picture
    assert is_whole(boxes[changes[0] - 1]) and not is_whole(boxes[changes[0]])
    assert is_whole(boxes[-1])
    for i in range(1, len(boxes)):  # a new view exactly where less than half is shared
        assert new_views[i] == (shared_part(boxes[i - 1], boxes[i]) < 0.5), i
    assert new_views[changes[0]] and new_views[changes[-1]]  # in, and back out
    assert not all(new_views[i] for i in changes)  # a box that grows a little: the same view
    never = AutoRoi(MODEL, AutoRoiSettings(new_view_below=0.0))
    assert not any((never.update(square_scene(x, y, seed=i), i / 5), never.new_view)[1]
                   for i, (x, y) in enumerate(path))


def test_after_a_cut_the_box_finds_the_actor_as_a_fresh_box_would() -> None:
    # A cut changes nearly every pixel at once: not motion to follow. Counted as motion, it
    # held the box on the whole picture for hold_s, and an actor after a cut was found 2 s
    # late (training dog after another clip, in benchmarks/reaction.py --roi auto).
    def circling(cx: float, cy: float, step: int) -> tuple[float, float]:
        return cx + 40 * np.cos(step / 5 * np.pi), cy + 30 * np.sin(step / 5 * np.pi)

    first = [square_scene(*circling(200, 220, i), seed=i) for i in range(20)]
    # another room: every pixel other than it was (the light, the walls), the actor elsewhere
    second = [255 - square_scene(*circling(420, 300, i), seed=50 + i) for i in range(20)]
    roi, fresh = AutoRoi(MODEL), AutoRoi(MODEL)
    before = [roi.update(f, i / 5) for i, f in enumerate(first)]
    assert not is_whole(before[-1])
    after = [roi.update(second[0], 4.0)]
    assert is_whole(after[0]) and roi.new_view  # the cut: back to the whole (new) picture
    after += [roi.update(f, 4.0 + i / 5) for i, f in enumerate(second) if i]
    assert after == [fresh.update(f, 4.0 + i / 5) for i, f in enumerate(second)]
    found = [i for i, box in enumerate(after) if not is_whole(box)]
    assert found and found[0] <= round(AutoRoiSettings().shrink_after_s * 5) + 2
    assert inside(after[-1], *circling(420, 300, 19), 60)


def test_when_everything_moves_the_box_is_the_whole_picture() -> None:
    roi = AutoRoi(MODEL)
    boxes = [roi.update(picture(seed=step), step / 5) for step in range(20)]
    assert all(is_whole(box) for box in boxes) and roi.moves == 0


def test_a_picture_no_larger_than_the_model_input_is_read_whole() -> None:
    roi = AutoRoi(MODEL)
    frames = [square_scene(40 + 5 * i, 40)[:172, :172] for i in range(20)]
    assert all(is_whole(roi.update(f, i / 5)) for i, f in enumerate(frames))


@pytest.mark.parametrize("shape", ["region", "square", "picture"])
def test_the_box_has_the_shape_asked_for(shape: str) -> None:
    roi = AutoRoi(MODEL, AutoRoiSettings(shape=shape, margin=0.1, whole_above=0.8))
    for step in range(20):  # a tall thin bar swinging left and right
        scene = square_scene(0, 0, size=0, seed=step)
        x = 300 + 30 * (step % 2)
        scene[100:340, x:x + 20] = 255
        box = roi.update(scene, step / 5)
    assert not is_whole(box)
    x0, y0, x1, y1 = pixel_rect(box, 640, 480)
    w, h = x1 - x0, y1 - y0
    if shape == "square":
        assert abs(w - h) <= 2
    elif shape == "picture":
        assert abs(w / h - 640 / 480) < 0.02
    else:
        assert h > 1.3 * w  # the moving region's own (tall) shape
    assert w >= 171 and h >= 171


def test_time_going_back_is_a_new_stream_and_grey_pictures_work() -> None:
    roi = AutoRoi(MODEL)
    for step in range(15):
        box = roi.update(square_scene(100 + 8 * step, 100, seed=step)[..., 0], step / 5)
    assert not is_whole(box)  # a grey (2-D) picture is taken as it is
    assert is_whole(roi.update(square_scene(0, 0, seed=1), 0.0))  # a loop restarting
    roi.update(square_scene(0, 0, seed=2), 0.2)
    roi.reset()
    assert roi.box == WHOLE and roi.moves == 0


def test_an_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        AutoRoiSettings(shape="round")


def test_a_picture_of_another_size_is_a_new_view_when_the_box_was_cropped() -> None:
    # (another source, or a clip of another size: the model's input jumps from a crop to
    # the whole picture, and whoever steps the model must hear of it)
    roi = AutoRoi(MODEL)
    box = WHOLE
    for step in range(30):
        box = roi.update(square_scene(100 + 5 * step, 200, seed=step), step / 5)
    assert not is_whole(box)
    whole = roi.update(np.zeros((240, 320, 3), np.uint8), 30 / 5)
    assert is_whole(whole) and roi.new_view
    fresh = AutoRoi(MODEL)  # a whole box to a whole box is no new view
    fresh.update(picture(), 0.0)
    fresh.update(picture(320, 240), 0.2)
    assert not fresh.new_view


def opened_extent(moving: np.ndarray, least: float) -> tuple[int, int, int, int] | None:
    """What moved, as the textbook says: open the mask with a 3x3 square (an erosion, then
    a dilation), count it and bound it (grey pixels: x0, y0, x1, y1)."""
    opened = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if cv2.countNonZero(opened) < least or not opened.any():
        return None
    x, y, w, h = cv2.boundingRect(opened)
    return x, y, x + w, y + h


def test_what_moved_is_the_opened_region_of_recent_motion() -> None:
    # AutoRoi gets there the cheap way (a dilation of the ages; the opening itself only
    # when the eroded region is too small to count alone): it must be the same region.
    rng = np.random.default_rng(7)
    roi = AutoRoi(MODEL)
    roi._picture = (80, 60)  # a picture the size of its grey copy: extents in grey pixels
    least = roi.settings.min_moving * 80 * 60  # 9.6 grey pixels
    small_regions = 0
    for trial in range(1000):
        density = (0.002, 0.01, 0.05, 0.3, 0.7)[trial % 5]
        recent = rng.random((60, 80)) < density
        if trial % 2:  # blobs: small regions near the count's limit
            recent = cv2.dilate(recent.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
        ages = np.where(recent, rng.integers(0, AGE_HOLD + 1, (60, 80)),
                        rng.integers(AGE_HOLD + 1, 256, (60, 80))).astype(np.uint8)
        moving = np.where(ages <= AGE_HOLD, 255, 0).astype(np.uint8)
        want = opened_extent(moving, least)
        got = roi._extent(ages)
        assert (None if got is None else tuple(round(v) for v in got)) == want
        eroded = cv2.countNonZero(cv2.erode(moving, np.ones((3, 3), np.uint8)))
        small_regions += 0 < eroded < least and want is not None
    assert small_regions > 0  # the case where only the opening itself can tell was met
