"""Shared fixtures: the real models, labels and clips in ../shared.

In CI (``$CI`` set) a missing ../shared is a failure, never a skip: the tests
that need real models are the ones that matter most.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from mqtt_broker import Broker

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def require_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (tests read real models and clips from ../shared)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def a0_model() -> Path:
    return require_shared("models", "movinet_a0_stream_int8.tflite")


@pytest.fixture(scope="session")
def a2_model() -> Path:
    return require_shared("models", "untrained", "movinet_a2_stream_int8.tflite")


@pytest.fixture(scope="session")
def a0_float_model() -> Path:
    return require_shared("models", "untrained", "movinet_a0_stream_float32.tflite")


@pytest.fixture(scope="session")
def untrained_dir() -> Path:
    return require_shared("models", "untrained")


@pytest.fixture(scope="session")
def kinetics_labels_path() -> Path:
    return require_shared("labels", "kinetics600_label_map.txt")


@pytest.fixture(scope="session")
def kinetics_labels(kinetics_labels_path: Path):
    from movinet_pi.model.labels import load_labels

    return load_labels(kinetics_labels_path)


@pytest.fixture(scope="session")
def carving_ice() -> Path:
    return require_shared("videos", "carving_ice.mp4")


@pytest.fixture(scope="session")
def arm_wrestling() -> Path:
    return require_shared("videos", "arm_wrestling.mp4")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A mosquitto of the test's own on 127.0.0.1 (tests/mqtt_broker.py), stopped after it."""
    from mqtt_broker import Broker, find_mosquitto

    b = Broker(find_mosquitto(), tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()
