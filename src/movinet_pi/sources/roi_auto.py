"""``--roi auto``: a box that follows where the action is, and keeps still while it can.

:class:`AutoRoi` takes the frames the model is given, one at a time, and says which part
of each the model should read::

    roi = AutoRoi(min_size=(172, 172))          # the model's input size, in pixels
    boxes = [roi.update(rgb, t) for t, rgb in frames]   # (x, y, w, h), fractions
    inputs = [crop(rgb, box) for (t, rgb), box in zip(frames, boxes)]

The cue is motion on a small grey copy of each frame (:data:`WORK_SIZE` pixels on its
long side): a place has "moved" when its grey level changed by more than
``threshold`` since the last frame, and counts as moving for ``hold_s`` seconds after.
The part of the picture that moved (its extent, once places that moved alone, smaller than
3x3 grey pixels, are left out, so that stray pixels do not stretch it) is enlarged by
``margin`` on each side, never made smaller than the model's input, shaped (``shape``) and
kept inside the picture: that is the *target*.

The box follows the target steadily, because the model is a video model (a box that moves
every frame looks to it like a shaking camera, and to its memory like a cut):

* it **grows at once** when the target reaches out of it: to cover both, and
  ``grow_headroom`` of the target's size further that way (action on the move soon
  reaches further);
* it **shrinks or moves only after** the target has stayed much smaller than it
  (under half its area) for ``shrink_after_s`` seconds, and then in one move;
* a target that would cover ``whole_above`` of the picture's area or more is the whole
  picture: the action already fills the frame;
* when nothing has moved for ``hold_s`` seconds, it goes back to the whole picture;
* a frame that changed over ``whole_above`` of the picture at once is a cut (or the light
  changed), not motion: it goes back to the whole picture and forgets what moved before,
  as a new stream would (else the cut itself counts as motion everywhere for ``hold_s``,
  and an actor after a cut is found that much later).

A move to a box that shares less than ``new_view_below`` of the two boxes' union with the
last one (the whole picture to a small box, a small box back to the whole picture, a box
more than doubling or halving its area) is a *new view*: :attr:`AutoRoi.new_view` says so,
and whoever steps the model calls ``StreamingClassifier.new_view()`` before its next step
(the recognizer, ``eval``, ``benchmarks/roi.py`` and ``benchmarks/reaction.py --roi
auto``): the plain and windowed memories start afresh there, ``--history auto`` starts a
fresh stream and keeps the old memory aside until the new view's answer says whether the
action changed (:mod:`movinet_pi.model.adaptive`). The frames the model saw before are of
another picture, and a streaming model that carries them keeps them in its running
averages: with the plain model, the first steps of a small actor's clip, seen whole before
the box found them, cost more recovered actors than any box shape did (docs/roi.md).

Each setting is in seconds, or in fractions of the picture, of the moving region or of
the boxes. The defaults are what ``benchmarks/roi.py`` chose by cross-validation over the
shared clips (docs/roi.md; every fold chose the same): the moving region's own shape, no
margin, 2 s of motion, 0.4 s before a shrink, the whole picture from 80 % of its area, no
headroom, a new view below half shared. ``threshold``, ``min_moving`` and
:data:`WORK_SIZE` are not fitted: they sit above the noise of a still picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from movinet_pi.sources.roi import WHOLE, Box

#: The long side of the grey copy motion is looked for on, in pixels.
WORK_SIZE = 80
#: A box is "much bigger" than its target when the target covers less than this of its area.
SHRINK_BELOW = 0.5
#: A target that reaches out of the box by less than this (of the box's size) is inside.
INSIDE_TOLERANCE = 0.05
#: ``hold_s`` in the units a grey pixel's age is counted in (a byte: at most 254).
AGE_HOLD = 250
SHAPES = ("region", "square", "picture")
OPENING = np.ones((3, 3), np.uint8)

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the picture


@dataclass(frozen=True)
class AutoRoiSettings:
    """How :class:`AutoRoi` behaves (see the module's text)."""

    #: "region": the moving region's own aspect; "square": squared off in pixels;
    #: "picture": the picture's aspect (a zoom, squashed into the model's input like the
    #: whole picture is)
    shape: str = "region"
    margin: float = 0.0  # added on each side, a fraction of the moving region's size
    hold_s: float = 2.0  # a place counts as moving this long after it last moved
    shrink_after_s: float = 0.4  # a box much bigger than its target shrinks after this
    whole_above: float = 0.8  # a target covering this much of the picture: the whole of it
    grow_headroom: float = 0.0  # a growing box takes this much of the target's size more
    #: a move to a box sharing less than this of the union with the last is a new view
    #: (the model's stream starts afresh there, see the module's text; 0: never)
    new_view_below: float = 0.5
    threshold: int = 12  # grey levels (of 255) a pixel must change by to have moved
    min_moving: float = 0.002  # the part of the picture that must move to count as motion

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {self.shape!r}")


class AutoRoi:
    """Frames in, boxes out: where the model should look (see the module's text).

    ``update(picture, t)`` takes each frame the model is given (RGB, BGR or grey, any
    size; ``t`` its time in seconds, default one model step after the last) and returns
    the box ``(x, y, w, h)`` in fractions of the picture. :meth:`reset` forgets the past
    (a new stream). ``min_size`` is the model's input size in pixels (w, h): the box is
    never smaller than that part of the picture. After each ``update``, :attr:`new_view`
    says whether the box moved to a new view, where the model should start afresh.
    """

    def __init__(self, min_size: tuple[int, int], settings: Optional[AutoRoiSettings] = None,
                 fps: float = 5.0) -> None:
        self.min_size = min_size
        self.settings = settings or AutoRoiSettings()
        self.step_s = 1.0 / fps
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next frame starts from the whole picture."""
        self.box: Box = WHOLE
        self.moves = 0
        #: the last update moved the box to a new view: the model should start afresh
        self.new_view = False
        self._rect: Optional[Rect] = None  # the box in pixels (None: whole)
        self._prev: Optional[np.ndarray] = None
        #: per grey pixel, how long ago it last moved, in 1/AGE_HOLD of hold_s (255: longer)
        self._age: Optional[np.ndarray] = None
        self._age_carry = 0.0  # the part of a step's time not yet added to the ages
        self._picture: tuple[int, int] = (0, 0)  # (w, h)
        self._t: Optional[float] = None
        self._t_prev: Optional[float] = None
        self._small_since: Optional[float] = None

    # -- the motion ---------------------------------------------------------------------------
    def _grey(self, picture: np.ndarray) -> np.ndarray:
        """The middle pixel of each block of the green channel (the same for RGB and BGR;
        a few microseconds, where averaging the blocks takes a tenth of a millisecond), then
        a 3x3 mean against the noise that sampling keeps."""
        step = max(1, round(max(picture.shape[:2]) / WORK_SIZE))
        plane = picture[step // 2::step, step // 2::step]
        return cv2.blur(plane[..., 1] if plane.ndim == 3 else plane, (3, 3))

    def _ages(self, grey: np.ndarray, t: float) -> Optional[np.ndarray]:
        """How long ago each grey pixel last moved, in 1/:data:`AGE_HOLD` of ``hold_s``
        (bytes: 255 is longer ago); None before two frames. A pixel moved when its grey
        level changed by more than ``threshold`` since the last frame. At a cut, nothing
        has moved yet. A handful of OpenCV calls on 5 kB: microseconds each, even with
        cold caches."""
        prev, self._prev = self._prev, grey
        if prev is None or prev.shape != grey.shape or self._age is None:
            self._age = np.full(grey.shape, 255, np.uint8)  # never moved
            self._age_carry = 0.0
            return None
        now = cv2.threshold(cv2.absdiff(grey, prev), self.settings.threshold, 255,
                            cv2.THRESH_BINARY)[1]  # 255 where it changed by more
        if cv2.countNonZero(now) >= self.settings.whole_above * now.size:
            # Nearly the whole picture changed at once: a cut (or the light), not motion to
            # follow. What moved before it is of another picture: start afresh from here.
            self._age.fill(255)
            self._age_carry = 0.0
            return self._age
        since = 0.0 if self._t_prev is None else t - self._t_prev
        elapsed = self._age_carry + since * AGE_HOLD / self.settings.hold_s
        ticks = int(elapsed)
        self._age_carry = elapsed - ticks
        # age + ticks (saturating at 255), and 0 where it moves now: -2 x 255 takes any
        # age to 0 (one call where an add and a subtract take two; integers, so exact)
        cv2.addWeighted(self._age, 1.0, now, -2.0, min(ticks, 255), dst=self._age)
        return self._age

    def _extent(self, ages: np.ndarray) -> Optional[Rect]:
        """The part that moved within ``hold_s``, in pixels of the picture; None: too
        little. Places that moved alone, smaller than 3x3 grey pixels, are left out (noise,
        not action).

        That is a morphological opening (an erosion, then a dilation) of where it moved,
        done the cheap way: the erosion is where the oldest age around a pixel is recent
        (one dilation of the ages, one threshold), and the opened region's extent is the
        eroded one's grown by a pixel. Its size is at least the eroded one's, so only a
        small eroded region needs the dilation done to be counted."""
        least = self.settings.min_moving * ages.size
        oldest_around = cv2.dilate(ages, OPENING)
        core = cv2.threshold(oldest_around, AGE_HOLD, 255, cv2.THRESH_BINARY_INV)[1]  # <= AGE_HOLD
        in_core = cv2.countNonZero(core)
        if not in_core or (in_core < least
                           and cv2.countNonZero(cv2.dilate(core, OPENING)) < least):
            return None
        x, y, w, h = cv2.boundingRect(core)
        rows, cols = ages.shape
        width, height = self._picture
        fx, fy = width / cols, height / rows
        return (max(x - 1, 0) * fx, max(y - 1, 0) * fy,
                min(x + w + 1, cols) * fx, min(y + h + 1, rows) * fy)

    # -- the box ------------------------------------------------------------------------------
    def _target(self, extent: Rect) -> Optional[Rect]:
        """The box the moving region asks for (None: the whole picture)."""
        s = self.settings
        x0, y0, x1, y1 = extent
        w = max((x1 - x0) * (1 + 2 * s.margin), self.min_size[0])
        h = max((y1 - y0) * (1 + 2 * s.margin), self.min_size[1])
        return self._placed(((x0 + x1) / 2, (y0 + y1) / 2), w, h)

    def _placed(self, centre: tuple[float, float], w: float, h: float) -> Optional[Rect]:
        """A ``w`` x ``h`` box around ``centre``, shaped and moved inside the picture."""
        width, height = self._picture
        shape = self.settings.shape
        if shape == "square":
            w = h = max(w, h)
        elif shape == "picture":
            w, h = max(w, h * width / height), max(h, w * height / width)
        w, h = min(w, width), min(h, height)
        if w * h >= self.settings.whole_above * width * height:
            return None
        x0 = min(max(centre[0] - w / 2, 0.0), width - w)
        y0 = min(max(centre[1] - h / 2, 0.0), height - h)
        return x0, y0, x0 + w, y0 + h

    def _move(self, rect: Optional[Rect]) -> None:
        whole = (0.0, 0.0, *map(float, self._picture))
        shared = _shared(self._rect or whole, rect or whole)
        self.new_view = self.new_view or shared < self.settings.new_view_below
        self._rect = rect
        self._small_since = None
        self.moves += 1
        if rect is None:
            self.box = WHOLE
            return
        width, height = self._picture
        x0, y0, x1, y1 = rect
        self.box = (x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)

    def _follow(self, target: Optional[Rect], t: float) -> None:
        """Grow at once; shrink or move once the target stayed much smaller long enough."""
        box = self._rect
        if box is None and target is None:
            return
        if target is None:  # the action fills the picture
            self._move(None)
            return
        if box is not None and not _inside(target, box):
            grown = _grown(box, target, self.settings.grow_headroom)
            self._move(self._placed(((grown[0] + grown[2]) / 2, (grown[1] + grown[3]) / 2),
                                    grown[2] - grown[0], grown[3] - grown[1]))
            return
        width, height = self._picture
        box_area = _area(box) if box is not None else width * height
        if _area(target) >= SHRINK_BELOW * box_area:
            self._small_since = None
            return
        if self._small_since is None:
            self._small_since = t
        if t - self._small_since >= self.settings.shrink_after_s - 1e-9:
            self._move(target)

    def update(self, picture: np.ndarray, t: Optional[float] = None) -> Box:
        """The box the model should read of ``picture`` (taken at ``t`` seconds)."""
        if t is None:
            t = 0.0 if self._t is None else self._t + self.step_s
        self.new_view = False
        if self._t is not None and t < self._t:  # time went back: another stream
            self.reset()
        height, width = picture.shape[:2]
        if (width, height) != self._picture:
            cropped = self._rect is not None
            self.reset()
            self._picture = (width, height)
            self.new_view = cropped  # from a crop back to the whole (other) picture
        self._t_prev, self._t = self._t, t
        ages = self._ages(self._grey(picture), t)
        if ages is None:
            return self.box
        extent = self._extent(ages)
        if extent is None:  # nothing moved for hold_s: the whole picture
            if self._rect is not None:
                self._move(None)
            self._small_since = None
            return self.box
        self._follow(self._target(extent), t)
        return self.box


def _grown(box: Rect, target: Rect, headroom: float) -> Rect:
    """``box`` grown to hold ``target``, and on each side the target reached out of, by
    ``headroom`` of the target's size more (action on the move soon reaches further)."""
    hx = headroom * (target[2] - target[0])
    hy = headroom * (target[3] - target[1])
    return (min(box[0], target[0] - (hx if target[0] < box[0] else 0.0)),
            min(box[1], target[1] - (hy if target[1] < box[1] else 0.0)),
            max(box[2], target[2] + (hx if target[2] > box[2] else 0.0)),
            max(box[3], target[3] + (hy if target[3] > box[3] else 0.0)))


def _area(rect: Rect) -> float:
    return (rect[2] - rect[0]) * (rect[3] - rect[1])


def _shared(a: Rect, b: Rect) -> float:
    """The part of the union of ``a`` and ``b`` that both cover (1: the same box)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    both = w * h
    union = _area(a) + _area(b) - both
    return both / union if union > 0 else 1.0


def _inside(inner: Rect, outer: Rect) -> bool:
    """``inner`` within ``outer``, give or take :data:`INSIDE_TOLERANCE` of its size."""
    tx = INSIDE_TOLERANCE * (outer[2] - outer[0])
    ty = INSIDE_TOLERANCE * (outer[3] - outer[1])
    return (inner[0] >= outer[0] - tx and inner[1] >= outer[1] - ty
            and inner[2] <= outer[2] + tx and inner[3] <= outer[3] + ty)
