"""Sinks the pipeline tests share."""

from __future__ import annotations

from movinet_pi.outputs.base import StepResult
from movinet_pi.pipeline import Pipeline


class StopAfter:
    """A sink that stops the run after ``steps`` model steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.results: list[StepResult] = []
        self.pipeline: Pipeline | None = None

    def on_step(self, result: StepResult) -> None:
        self.results.append(result)
        if len(self.results) >= self.steps and self.pipeline is not None:
            self.pipeline.stop()

    def close(self) -> None:
        pass
