"""``--history auto``: a long memory that starts afresh when the action changes.

The memory is :class:`~movinet_pi.model.history.ExponentialHistory` over 30 s
(the plain model, bit for bit, for its first 30 s). What ends it is a change of
*answer*, not of picture: a new camera angle on the same action is a new
picture but the same answer, and must not cost the memory. Two tests find the
moment to ask (:mod:`movinet_pi.model.change`); the model's own head answers:

* **Another place.** The picture's colours jump from the last picture's and are
  unlike every picture of the last 30 s: a cut to another shot or another
  video. Before the model runs on that frame, the stream starts afresh (every
  state zeroed, as a reset at that moment would: no replay, no stall) and the
  memory from before is kept aside. While the fresh stream's first frames
  settle (0.6 s: they see only black before them), the old memory alone stays
  on show; from then on, with the new frames added, but not those first ones.
  Then the fresh stream's answer is compared with what was shown before the
  cut: if they agree less than ``agree``
  (:func:`~movinet_pi.model.change.agreement`), or the fresh answer is at least
  ``sure`` of an action the old one did not put first, it names another action.
  When it is at least ``sure`` of that action, or names the same one two steps
  in a row, the action changed and the old memory is dropped: one unsure answer
  alone may be a shot the model cannot read. If ``fold_s`` passes without that,
  the cut was another angle on the same action: the old memory is folded back in
  (the pools' sums and counts add), without the fresh stream's first frames.
* **Another view.** When ``--roi auto``'s box moves to another part of the
  picture (:meth:`AdaptiveHistory.new_view`), the next frame is treated as a cut
  to another place, but the old memory is dropped only when the fresh answer is
  at least ``sure`` of an action the old one did not put first (or agrees less
  than ``agree`` with it) ``same_place_s`` in a row; from ``fold_s`` on it is
  folded back at the first step that is not so, by ``question_s`` at the latest:
  a box that finds a small actor, or follows one, is no sign of a new action and
  must not cost the memory of one that goes on. A cut and a box move a few frames
  apart (a box follows a cut late, a cut comes right after a box moved) are one
  change, decided by the cut's rule on a fresh stream from the later of the two.
* **The same place, another action.** The features of the last 0.6 s are
  unlike any of the last 30 s (:class:`~movinet_pi.model.change.NoveltyDetector`):
  the frames since then are scored through the head on their own. When that
  answer is at least ``sure`` of one action and disagrees with what was shown
  before them, ``same_place_s`` in a row, the memory restarts from those frames
  (their features' sums: no replay). A pose, a passer-by or a glitch disagrees
  for a moment; a new action goes on disagreeing. A question still open after
  ``question_s`` (the length of a Kinetics clip) is dropped. New features while one is
  open (not disagreeing, and ``2 * settle_s`` after its own start, so that its first
  frames are among those compared with) start a question of their own at that change.

Both look 30 s back, so a loop or a cut back to an earlier shot is not news. At a
change from an action held ``question_s`` or longer, the colours forget the
pictures before it, as the memory does: going back to that action after a short
interruption is then a cut. Without a head to score answers with
(:class:`~movinet_pi.model.head.HeadScorer`, or a taught head), the policy is the
30 s moving average alone. ``docs/live-fidelity.md`` has the measurements and how
each setting was chosen.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.adaptive_state import AutoSettings, Fork, Question, RecentStep, mean_of
from movinet_pi.model.change import ColourMemory, NoveltyDetector, agreement
from movinet_pi.model.history import (
    ExponentialHistory,
    HistoryPolicy,
    Memory,
    PlainHistory,
    PoolSlot,
    Scorer,
)

AUTO = "auto"
HistorySpec = Union[float, str]  # seconds, inf, or "auto"


class AdaptiveHistory(ExponentialHistory):
    """``--history auto``; see the module's docstring."""

    label = AUTO

    def __init__(self, fps: float, settings: AutoSettings | None = None) -> None:
        s = settings or AutoSettings()
        super().__init__(s.long_s * fps)
        self.label = AUTO
        self.settings = s
        steps = max(1, round(s.settle_s * fps))
        self._settle = steps
        self._same_place = max(1, round(s.same_place_s * fps))
        self._fold = max(steps, round(s.fold_s * fps))
        self._question_steps = max(steps, round(s.question_s * fps))
        horizon = max(1, round(s.long_s * fps))
        self.colours = ColourMemory(horizon, sudden=s.sudden, novel=s.novel)
        self.detector = NoveltyDetector(steps, horizon)

    def attach(self, slots: Sequence[PoolSlot], score: Scorer | None = None, *,
               picture_flip: int = 0) -> None:
        # The head pool's features describe the whole frame; it is the last pool.
        heads = [i for i, slot in enumerate(slots) if "head" in slot.name]
        self._head = heads[-1] if heads else len(slots) - 1
        self.colours.flip = picture_flip
        super().attach(slots, score, picture_flip=picture_flip)

    def reset(self) -> None:
        super().reset()
        self.colours.reset()
        self.detector.reset()
        self._fork: Fork | None = None
        self._question: Question | None = None
        self._recent: list[RecentStep] = []
        self._since_change = self._settle  # steps since the last change began
        self._view_moved = False  # the next frame is of another view (new_view)
        self._loaded: np.ndarray | None = None  # a head mean loaded this step, shown at once
        self.forks = 0  # cuts to another place (each starts a fresh stream)
        self.changes = 0  # changes of action found (either kind)
        self.folds = 0  # cuts found to be the same action

    @property
    def active(self) -> bool:
        """Whether changes are looked for (a head to score answers with, and a pool)."""
        return self.score is not None and bool(self.slots)

    # -- before the invoke: another place? -----------------------------------------------

    def new_view(self) -> bool:
        if not self.active:
            return False
        self._view_moved = True
        return True

    def begin(self, picture: np.ndarray) -> bool:
        if not self.active:
            return False
        new_place = self.colours.add(picture)
        moved, self._view_moved = self._view_moved, False
        fork = self._fork
        if fork is not None and fork.frames < self._fold:
            if fork.view and new_place:  # a cut right after a box move: the cut's rule
                fork.view = False
                return self._reframe(fork)
            if moved and not new_place and not fork.view:  # a box that follows a cut late
                return self._reframe(fork)
        if not moved and (not new_place or self._since_change < self._settle):
            return False
        old = self.memory()
        if fork is not None:  # a cut while one is undecided: that one is part of the old
            old = [(a + b, m + n) for (a, m), (b, n) in zip(old, fork.old)]
        total, frames = old[self._head]
        shown = self._recent[-1].shown_mean() if self._recent else mean_of(total, frames)
        assert self.score is not None
        self._fork = Fork(old, self.score(shown).copy(), view=moved and not new_place)
        self._question = None
        self._start_fresh()
        self.forks += 1
        return True

    def _reframe(self, fork: Fork) -> bool:
        """A cut and a box move a few frames apart, while the first is undecided (a box
        follows a cut late; a cut comes right after a box moved): the fresh stream starts
        again on this frame, the memory from before the first stays aside, and a cut's rule
        decides."""
        fork.frames, fork.early, fork.named = 0, [], None
        self._start_fresh()
        return True

    def _start_fresh(self) -> None:
        """The pools start a fresh stream at this step (what they held is the caller's to
        keep); a change begins here."""
        ExponentialHistory.reset(self)
        self._since_change = 0

    # -- after the invoke --------------------------------------------------------------------

    def carry(self) -> None:
        if not self.active:
            super().carry()
            return
        slot = self.slots[self._head]
        features = slot.frame_features()
        self._loaded = None
        self._advance({self._head: features})
        self._since_change += 1
        limit = self.settings.features_novel
        novelty = self.detector.add(features, novel=limit)
        novel = novelty is not None and novelty > limit
        if self._fork is not None:
            self._follow_fork(features)
        elif self._question is not None:
            back = self.detector.new_frames() - 1 if novel else 0  # where the change is
            if not (novel and self._asks_again(back) and self._ask(features, back)):
                self._follow_question(features)
        elif novel:
            self._ask(features, self.detector.new_frames() - 1)
        self._remember(features)

    def _remember(self, features: np.ndarray) -> None:
        """Keep the last few steps as read: the mean shown instead of the pool's if any, the
        head pool's sum and count, the features (a question may start a few frames back,
        where the features put the change)."""
        shown = self.shown_mean
        slot = self.slots[self._head]
        self._recent.append(RecentStep(None if shown is None else shown.copy(),
                                       slot.buffer_out.copy(),
                                       float(slot.count_out.reshape(-1)[0]), features.copy()))
        del self._recent[: -(self._settle + 1)]

    @staticmethod
    def _pool_mean(slot: PoolSlot) -> np.ndarray:
        return mean_of(slot.buffer_out, float(slot.count_out.reshape(-1)[0]))

    def _addend(self, features: np.ndarray) -> np.ndarray:
        """What ``features`` add to the head pool's sum, as the plain model adds them."""
        added = np.empty(self.slots[self._head].buffer_in.shape, np.float64)
        return self.slots[self._head].added(added, features).reshape(-1)

    # -- another place -----------------------------------------------------------------------

    def _follow_fork(self, features: np.ndarray) -> None:
        fork = self._fork
        assert fork is not None and self.score is not None
        fork.frames += 1
        if fork.frames <= self._settle:
            fork.early.append(self._addend(features))
        if fork.frames < self._settle:
            return
        fresh = self.score(self._pool_mean(self.slots[self._head]))
        if fork.view:
            self._follow_view(fork, fresh)
        elif self._another_action_after_the_cut(fork, fresh):
            self._keep_fresh()
        elif fork.frames >= self._fold:
            self._fold_back(fork)

    def _another_action_after_the_cut(self, fork: Fork, fresh: np.ndarray) -> bool:
        """Whether the fresh answer names another action than was shown before the cut, and
        means it: sure of it, or naming the same one two steps in a row. A fresh stream's
        first answers are unsure, and one of them alone may be a shot the model cannot read
        (a broadcast of tai chi, at a cut, read for one step as "playing dominoes" at 0.16);
        a new action goes on being named."""
        if not self._names_another_action(fork.before, fresh):
            fork.named = None
            return False
        top = int(fresh.argmax())
        again, fork.named = fork.named == top, top
        return again or float(fresh[top]) >= self.settings.sure

    def _keep_fresh(self) -> None:
        """Another action: the fork's fresh stream is the memory now."""
        fork = self._fork
        assert fork is not None
        self._fork = None
        self._changed(began=fork.frames, after=fork.old[self._head][1])

    def _fold_back(self, fork: Fork) -> None:
        """The same action: the old memory is back, with the fresh frames but the first."""
        self._load_and_show(self._folded(fork))
        self._fork = None
        self.folds += 1

    def _follow_view(self, fork: Fork, fresh: np.ndarray) -> None:
        """A crop that moved is no sign of another action, and a fresh stream's first
        answers are unsure and often of a neighbouring action: as at the same place, the
        fresh answer must be sure of another action ``same_place_s`` in a row to end the
        old memory; it is folded back once ``fold_s`` has passed without a disagreement
        going on (at the latest after ``question_s``)."""
        sure = float(fresh.max()) >= self.settings.sure
        disagrees = sure and self._names_another_action(fork.before, fresh)
        fork.disagreeing = fork.disagreeing + 1 if disagrees else 0
        if fork.disagreeing >= self._same_place:
            self._keep_fresh()
        elif ((fork.frames >= self._fold and not fork.disagreeing)
              or fork.frames >= self._question_steps):
            self._fold_back(fork)

    def _names_another_action(self, before: np.ndarray, answer: np.ndarray) -> bool:
        """Whether ``answer`` is about another action than ``before``: the two hardly agree,
        or ``answer`` is sure of an action ``before`` did not put first (neighbouring
        actions, a squat and a lunge, share much of their probability)."""
        if agreement(before, answer) < self.settings.agree:
            return True
        top = int(answer.argmax())
        return top != int(before.argmax()) and float(answer[top]) >= self.settings.sure

    def _folded(self, fork: Fork) -> Memory:
        """The old memory and the fresh stream's, but for its first frames."""
        early = np.sum(fork.early, axis=0) if fork.early else 0.0
        memory = []
        for i, ((old, m), (new, n)) in enumerate(zip(fork.old, self.memory())):
            if i == self._head:
                new, n = new - np.reshape(early, new.shape), n - len(fork.early)
            memory.append((old + new, m + n))
        return memory

    def _load_and_show(self, memory: Memory) -> None:
        """Load ``memory`` for the next step and show its answer at this one already."""
        self.load(memory)
        total, frames = memory[self._head]
        self._loaded = total.reshape(-1) / max(1, frames)

    @property
    def shown_mean(self) -> np.ndarray | None:
        fork = self._fork
        if fork is None or not self.slots:
            return self._loaded
        (old, m), (new, n) = fork.old[self._head], self.memory()[self._head]
        if fork.frames < self._settle:
            return old.reshape(-1) / max(1, m)
        early = np.sum(fork.early, axis=0).reshape(new.shape)
        return ((old + new - early) / max(1, m + n - len(fork.early))).reshape(-1)

    # -- the same place, another action ------------------------------------------------------

    def _ask(self, features: np.ndarray, back: int) -> bool:
        """Start scoring the frames since the change the features found, ``back`` frames
        before this one (:meth:`NoveltyDetector.new_frames` - 1); False if it is the change
        already found."""
        back = min(back, len(self._recent) - 1)
        # Right after a change the features are new against the old scene's until the
        # new scene's own first window is among those compared with: that is the change
        # already found, not another one.
        if back < 0 or self._since_change < back + 2 * self._settle:
            return False
        assert self.score is not None
        before_mean = self._recent[-1 - back].shown_mean()
        frames = [step.feature_vector() for step in self._recent[len(self._recent) - back:]]
        frames.append(features.reshape(-1).astype(np.float64))
        self._question = Question(
            before=self.score(before_mean).copy(),
            features=np.sum(frames, axis=0),
            added=np.sum([self._addend(f) for f in frames], axis=0),
            frames=len(frames),
        )
        return True

    def _asks_again(self, back: int) -> bool:
        """Whether new features during an open question are a change of their own: the
        question's first frames are already among those compared with, and its answer is
        not disagreeing. A new question then starts at that change: the frames of the first
        would mix two scenes, and its answer be sure of neither (a change from one action
        to another right after a pose change in the first)."""
        q = self._question
        assert q is not None
        return q.disagreeing == 0 and q.frames - back >= 2 * self._settle

    def _follow_question(self, features: np.ndarray) -> None:
        q = self._question
        assert q is not None and self.score is not None
        q.features += features.reshape(-1)
        q.added += self._addend(features)
        q.frames += 1
        if q.frames < self._settle:
            return
        answer = self.score(q.features / q.frames)
        disagrees = agreement(q.before, answer) < self.settings.agree
        q.disagreeing = q.disagreeing + 1 if disagrees and answer.max() >= self.settings.sure else 0
        if q.disagreeing >= self._same_place:
            self._restart_from(q)
        elif q.frames >= self._question_steps:
            self._question = None

    def _restart_from(self, q: Question) -> None:
        """The memory is the question's frames now: the head pool's sum of them; the other
        pools (a float model's squeeze-excitation context) keep their means."""
        before = self.memory()
        memory = [(total / max(1, frames) * q.frames, q.frames) for total, frames in before]
        memory[self._head] = (q.added.reshape(memory[self._head][0].shape), q.frames)
        self._start_fresh()
        self._load_and_show(memory)
        self._question = None
        self._changed(began=q.frames, after=before[self._head][1])

    def _changed(self, *, began: int, after: int) -> None:
        """A change of action, decided, that began ``began`` frames ago, after a memory of
        ``after`` frames. If that memory spanned a Kinetics clip (``question_s``), it held
        an action someone may go back to after a short interruption, at a place the memory
        no longer holds: the colours forget the pictures before the change, so that going
        back is a cut. A shorter memory (an interruption, or a change that was wrong)
        leaves the pictures: a cut back to them is no news, and a wrong change at a cut
        of a loop cannot set off another at the next."""
        if after >= self._question_steps:
            self.colours.changed(began)
        self.changes += 1

    @property
    def memory_steps(self) -> int:
        steps = super().memory_steps
        if self._fork is not None and self.slots:
            steps += self._fork.old[self._head][1]
        return min(steps, self.n)


def history_policy(spec: HistorySpec, fps: float) -> HistoryPolicy:
    """The policy for ``--history``: ``auto``, SECONDS (``inf`` = plain) at the model's rate."""
    if spec == AUTO:
        return AdaptiveHistory(fps)
    seconds = float(spec)
    if seconds <= 0 or math.isnan(seconds):
        raise MovinetPiError("--history must be more than 0 seconds, 'inf' or 'auto'")
    if math.isinf(seconds):
        return PlainHistory()
    return ExponentialHistory(seconds * fps)
