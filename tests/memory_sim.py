"""A synthetic stream for ``--history auto`` (:class:`AdaptiveHistory`): float pools that add
each frame's features (on an int8 grid if asked), a scorer softmax(beta * head mean) over the
first K features (the rest are a "pose" the answer ignores), pictures of "places"
(``test_history_auto._room``). Each rule of the memory can be driven step by step, in
microseconds, without a model."""
from __future__ import annotations

import numpy as np
from test_history_auto import _room

from movinet_pi.model.adaptive import AdaptiveHistory, AutoSettings
from movinet_pi.model.pools import FeatureTensor, PoolSlot

K = 4  # classes
D = 8  # features: the first K score, the rest are "pose" the head ignores


def action(k: int, strength: float = 1.0, pose: int | None = None,
           pose_strength: float = 2.0) -> np.ndarray:
    f = np.zeros(D, np.float32)
    f[k] = strength
    if pose is not None:
        f[K + pose] = pose_strength
    return f


def _slot(name: str, grid: object = None, exposed: bool = True) -> PoolSlot:
    z = lambda: np.zeros(D, np.float32)  # noqa: E731
    # a float model whose frame features are exposed (as every shared model's are), or,
    # with exposed=False, one whose features are known only as the sum's change
    return PoolSlot(name, z(), z(), np.zeros(1, np.int32), np.zeros(1, np.int32), grid,  # type: ignore[arg-type]
                    feature=z() if exposed else None,
                    feature_grid=FeatureTensor(0, 0.0, 0) if exposed else None)


class Sim:
    def __init__(self, settings: AutoSettings | None = None, *, beta: float = 10.0,
                 block_pool: bool = False, grid=None, exposed: bool = True) -> None:
        self.policy = AdaptiveHistory(5, settings)
        self.beta = beta
        names = (["block_pool"] if block_pool else []) + ["head_pool"]
        self.slots = [_slot(n, grid, exposed) for n in names]
        self.policy.attach(self.slots, self.score)
        self.zeroed = []

    def score(self, mean: np.ndarray) -> np.ndarray:
        z = self.beta * np.asarray(mean, np.float64).reshape(-1)[:K]
        e = np.exp(z - z.max())
        return e / e.sum()

    def step(self, picture: np.ndarray, features: np.ndarray,
             block: np.ndarray | None = None) -> np.ndarray:
        fresh = self.policy.begin(picture)
        self.zeroed.append(fresh)
        if fresh:
            for s in self.slots:
                s.buffer_in.fill(0)
                s.count_in.fill(0)
        for s in self.slots:
            f = block if (block is not None and s.name == "block_pool") else features
            if s.feature is not None:
                s.feature[:] = f
            if s.grid is None:
                s.buffer_out[:] = s.buffer_in + f
            else:  # an int8 model: the frame's features rounded onto the sum's grid, added
                s.buffer_out[:] = s.grid.snap(s.buffer_in + s.grid.snap(f))
            s.count_out[:] = s.count_in + 1
        self.policy.carry()
        return self.score(self.shown())

    def shown(self) -> np.ndarray:
        m = self.policy.shown_mean
        if m is not None:
            return m
        h = self.slots[-1]
        return h.buffer_out.astype(np.float64) / max(1, int(h.count_out[0]))

    def run(self, picture, features, n, block=None):
        return [self.step(picture, features, block) for _ in range(n)]


ROOM, OTHER, THIRD = _room(1), _room(2), _room(6)
