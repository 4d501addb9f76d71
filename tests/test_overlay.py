"""The overlay, rendered to a PNG a person can look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from movinet_pi.display.overlay import (
    STATUS_INTERVAL_S,
    OverlayPainter,
    OverlayState,
    draw_overlay,
    status_line,
)
from movinet_pi.model.predictions import Prediction

OUT = Path(__file__).resolve().parents[1] / "build" / "overlay.png"


def _state() -> OverlayState:
    return OverlayState(
        predictions=[Prediction("carving ice", 0.93, 72), Prediction("chiseling stone", 0.05, 86)],
        model_name="MoViNet-A0 stream int8",
        display_fps=29.8,
        model_fps=5.0,
        infer_ms=2.4,
    )


def test_overlay_png_shows_labels_and_bars(carving_ice: Path) -> None:
    cap = cv2.VideoCapture(str(carving_ice))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, small = cap.read()
    cap.release()
    assert ok
    bgr = cv2.resize(small, (640, 480))
    bgr[:60] = np.maximum(bgr[:60], 60)  # the clip is letterboxed black at the top
    before = bgr.copy()
    draw_overlay(bgr, _state())
    OUT.parent.mkdir(exist_ok=True)
    assert cv2.imwrite(str(OUT), bgr)
    # panels darken the top and bottom, the picture between is untouched
    assert bgr[:40].mean() < before[:40].mean()
    assert bgr[-10:].mean() < before[-10:].mean()
    np.testing.assert_array_equal(bgr[200:300], before[200:300])
    # a green bar for 93 % starts at the left
    green = (bgr[..., 1] > 150) & (bgr[..., 0] < 120) & (bgr[..., 2] < 120)
    assert green[:, :100].sum() > 200


def test_status_line_names_model_and_rates() -> None:
    line = status_line(_state())
    assert "MoViNet-A0" in line and "29.8 fps" in line and "5.0 fps" in line and "2.4 ms" in line


def test_status_line_says_how_far_back_the_memory_reaches() -> None:
    assert "memory" not in status_line(_state())
    state = _state()
    state.memory_s = 8.4
    assert status_line(state).endswith("memory  8.4 s")


def test_no_predictions_says_no_action() -> None:
    img = np.full((240, 320, 3), 128, np.uint8)
    draw_overlay(img, OverlayState())
    assert img[:30].mean() < 128  # panel drawn


def _picture(shape: tuple[int, int, int]) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)


def test_the_cached_painter_looks_like_draw_overlay() -> None:
    busy = OverlayState(
        predictions=[Prediction("carving ice", 0.93, 72), Prediction("chiseling stone", 0.05, 86)],
        model_name="MoViNet-A0 stream int8", display_fps=29.8, model_fps=5.0, infer_ms=2.4,
        threads=2, memory_s=8.0, prediction_age_s=3.0, message="stream reset", show_help=True,
        extra_lines=["Pi: 81 °C"])
    for shape in [(480, 640, 3), (720, 1280, 3), (688, 688, 3)]:
        for state in (_state(), busy, OverlayState()):
            picture = _picture(shape)
            expected = draw_overlay(picture.copy(), state)
            got = OverlayPainter().draw(picture.copy(), state)
            difference = np.abs(expected.astype(int) - got)
            assert difference.max() <= 2  # rounding only
            assert not np.array_equal(got, picture)


def test_the_painter_redraws_the_status_at_most_every_interval_but_news_at_once() -> None:
    now = [0.0]
    painter = OverlayPainter(clock=lambda: now[0])
    picture = _picture((480, 640, 3))
    first = painter.draw(picture.copy(), _state())
    faster = OverlayState(**{**_state().__dict__, "display_fps": 12.5})
    now[0] = STATUS_INTERVAL_S / 2
    np.testing.assert_array_equal(painter.draw(picture.copy(), faster), first)  # not yet
    news = OverlayState(**{**faster.__dict__,
                           "predictions": [Prediction("juggling", 0.5, 1)]})
    changed = painter.draw(picture.copy(), news)  # a new prediction: at once, new rates too
    np.testing.assert_array_equal(changed, OverlayPainter().draw(picture.copy(), news))
    now[0] = STATUS_INTERVAL_S * 2
    slower = OverlayState(**{**news.__dict__, "display_fps": 3.0})
    np.testing.assert_array_equal(painter.draw(picture.copy(), slower),
                                  OverlayPainter().draw(picture.copy(), slower))
    assert not np.array_equal(painter.draw(picture.copy(), slower), changed)


def test_a_hot_or_throttled_pi_turns_the_status_amber() -> None:
    def status_strip(warning: bool) -> np.ndarray:
        img = np.zeros((360, 640, 3), np.uint8)
        state = _state()
        state.extra_lines, state.warning = ["Pi: CPU 82.4 °C, throttled"], warning
        draw_overlay(img, state)
        return img[-60:].astype(int)

    calm, hot = status_strip(False), status_strip(True)
    # grey text has equal channels; amber (BGR 60, 170, 255) has far more red than blue
    assert (calm[..., 2] - calm[..., 0]).max() < 10
    assert (hot[..., 2] - hot[..., 0]).max() > 120


def test_the_status_stays_readable_on_a_narrow_picture() -> None:
    # A portrait clip is shown 408 wide: the status keeps the size it has on a 640-wide
    # picture, wrapped onto more lines, rather than shrinking to a blur.
    def strip_rows(width: int, height: int) -> int:
        img = np.full((height, width, 3), 128, np.uint8)
        draw_overlay(img, OverlayState(model_name="MoViNet-A0 stream int8", threads=2,
                                       infer_ms=3.2, memory_s=6.6, source_time=6.4,
                                       source_duration=10.8))
        darker = img.reshape(height, -1).min(axis=1) < 128
        return int(np.argmin(darker[::-1]))  # darkened rows up from the bottom

    assert strip_rows(320, 568) > strip_rows(640, 480)


TWO = [Prediction("carving ice", 0.93, 72), Prediction("chiseling stone", 0.05, 86)]


def _texts_drawn(monkeypatch: pytest.MonkeyPatch, state: OverlayState) -> list[str]:
    """Every text the overlay draws for ``state`` (drawn as usual, and noted)."""
    from movinet_pi.display import overlay

    drawn: list[str] = []
    real = cv2.putText

    def noted(image: np.ndarray, text: str, *args: object, **kwargs: object) -> np.ndarray:
        drawn.append(text)
        return real(image, text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(overlay.cv2, "putText", noted)
    draw_overlay(np.full((480, 640, 3), 128, np.uint8), state)
    return drawn


def test_each_label_is_drawn_with_its_percentage(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _texts_drawn(monkeypatch, OverlayState(predictions=TWO))
    for text in ("carving ice", "93.0%", "chiseling stone", "5.0%"):
        assert text in drawn
    assert "no action" not in drawn
    assert "no action" in _texts_drawn(monkeypatch, OverlayState())


def test_each_bar_is_as_long_as_its_score() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    draw_overlay(image, OverlayState(predictions=TWO))
    green = (image[..., 1] > 150) & (image[..., 0] < 120) & (image[..., 2] < 120)
    widths = sorted({int(n) for n in green.sum(axis=1) if n}, reverse=True)
    full = int(640 * 0.25)  # a bar at 100 % is a quarter of the picture wide
    assert abs(widths[0] - int(full * 0.93)) <= 2 and abs(widths[-1] - int(full * 0.05)) <= 2


def test_a_prediction_older_than_a_second_says_how_old(monkeypatch: pytest.MonkeyPatch) -> None:
    stale = _texts_drawn(monkeypatch, OverlayState(predictions=TWO, prediction_age_s=3.0))
    assert "prediction is 3.0 s old" in stale
    fresh = _texts_drawn(monkeypatch, OverlayState(predictions=TWO, prediction_age_s=0.9))
    assert not any("old" in text for text in fresh)


def test_the_painter_shows_a_new_message_at_once() -> None:
    now = [0.0]
    painter = OverlayPainter(clock=lambda: now[0])
    picture = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    painter.draw(picture.copy(), OverlayState(predictions=TWO))
    now[0] = 0.01  # well within the status line's interval
    news = OverlayState(predictions=TWO, message="stream reset")
    np.testing.assert_array_equal(painter.draw(picture.copy(), news),
                                  OverlayPainter().draw(picture.copy(), news))
