"""Finding a runtime and loading models: the one-line errors for bad model files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pytest

from movinet_pi import MovinetPiError
from movinet_pi.model import runtime
from movinet_pi.model.signature import read_signature


def test_prefers_ai_edge_litert_or_the_one_asked_for() -> None:
    found = runtime.find_runtime()
    wanted = os.environ.get("MOVINET_PI_RUNTIME")
    assert found.name == (wanted or "ai-edge-litert")
    assert found.version != "unknown"


def test_no_runtime_installed_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOVINET_PI_RUNTIME", raising=False)
    monkeypatch.setattr(runtime, "_import_runtime", lambda module, attr: None)
    with pytest.raises(MovinetPiError) as e:
        runtime.find_runtime()
    assert "pip install ai-edge-litert" in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_runtime_name_is_refused() -> None:
    with pytest.raises(MovinetPiError, match="unknown runtime 'onnx'"):
        runtime.find_runtime("onnx")


def test_threads_default_to_all_cores() -> None:
    assert runtime.default_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "model file is empty"),
        (b"this is not a model\n" * 10, "not a TFLite model"),
        (os.urandom(4096), "not a TFLite model"),
    ],
)
def test_bad_model_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(MovinetPiError, match=message) as e:
        runtime.load_interpreter(path, 1)
    assert "\n" not in str(e.value)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(MovinetPiError, match="model file not found"):
        runtime.load_interpreter(tmp_path / "nope.tflite", 1)


@pytest.mark.parametrize("keep", [0.01, 0.06, 0.5, 0.9, 0.999])
def test_truncated_model_is_refused_before_the_runtime_sees_it(
    a0_model: Path, tmp_path: Path, keep: float
) -> None:
    # tflite-runtime 2.14 crashes the whole process on a cut file: it must never get one.
    data = a0_model.read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(MovinetPiError, match="model file is truncated") as e:
        runtime.load_interpreter(path, 1)
    assert "\n" not in str(e.value) and "download it again" in str(e.value)


def test_whole_models_pass_the_truncation_check(shared: Path) -> None:
    models = sorted((shared / "models").rglob("*.tflite"))
    assert len(models) >= 5
    for model in models:
        runtime.check_model_file(model)


def test_loads_a_real_model(a0_model: Path) -> None:
    interpreter, rt = runtime.load_interpreter(a0_model, 2)
    assert read_signature(interpreter).num_classes == 600
    assert rt.name


class _FakeInterpreter:
    """Stands for a runtime's Interpreter class: records how it was made."""

    made: ClassVar[list[dict]] = []

    def __init__(self, **kwargs: object) -> None:
        _FakeInterpreter.made.append(kwargs)

    def allocate_tensors(self) -> None:
        pass


def test_the_runtimes_are_preferred_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # ai-edge-litert (maintained), then tflite-runtime (older, numpy<2), then TensorFlow.
    monkeypatch.delenv("MOVINET_PI_RUNTIME", raising=False)
    installed = {"ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow"}
    monkeypatch.setattr(runtime, "_import_runtime",
                        lambda module, attr: _FakeInterpreter if module in installed else None)
    assert runtime.find_runtime().name == "ai-edge-litert"
    installed.discard("ai_edge_litert.interpreter")
    assert runtime.find_runtime().name == "tflite-runtime"
    installed.discard("tflite_runtime.interpreter")
    assert runtime.find_runtime().name == "tensorflow"


def test_the_environment_picks_a_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_import_runtime", lambda module, attr: _FakeInterpreter)
    monkeypatch.setenv("MOVINET_PI_RUNTIME", "tensorflow")
    assert runtime.find_runtime().name == "tensorflow"


def test_a_runtime_asked_for_and_not_installed_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_import_runtime", lambda module, attr: None)
    with pytest.raises(MovinetPiError, match="runtime 'tflite-runtime' is not installed: "
                                             "pip install tflite-runtime"):
        runtime.find_runtime("tflite-runtime")


def test_the_threads_asked_for_reach_the_interpreter(a0_model: Path) -> None:
    fake = runtime.Runtime("fake", "0", _FakeInterpreter)
    _FakeInterpreter.made.clear()
    runtime.load_interpreter(a0_model, 3, fake)
    runtime.load_interpreter(a0_model, None, fake)  # not given: every core
    assert [k["num_threads"] for k in _FakeInterpreter.made] == [3, runtime.default_threads()]
