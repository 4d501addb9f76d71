"""``movinet-pi info``: what a .tflite file is, as far as this app is concerned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.catalogue import MODEL_FPS, sha256_file
from movinet_pi.model.labels import Labels, check_label_count, load_labels, resolve_labels
from movinet_pi.model.runtime import default_threads, load_interpreter
from movinet_pi.model.signature import (
    catalogue_title,
    narrow_for_streaming,
    read_signature,
    weights_quantization,
)
from movinet_pi.model.taught import read_taught
from movinet_pi.progress import size_text


def _io_types(interpreter: Any, sig: Any) -> dict[str, str]:
    """The dtype (and quantization, if any) of the image input and the logits output."""
    details = {d["index"]: d for d in interpreter.get_tensor_details()}

    def describe(index: int) -> str:
        d = details[index]
        scale, zero_point = d.get("quantization", (0.0, 0))
        kind = np.dtype(d["dtype"]).name
        return f"{kind} (scale {scale:g}, zero point {zero_point})" if scale else kind

    return {"image": describe(sig.image_index), "logits": describe(sig.logits_index)}


def describe_model(model_path: Path, labels_path: Path | None = None) -> dict[str, Any]:
    """Everything ``info`` prints, as a dict (the ``--json`` form)."""
    interpreter, runtime = load_interpreter(model_path, default_threads())
    sig = read_signature(interpreter)
    head = read_taught(model_path)
    classes = head.num_classes if head else sig.num_classes
    labels, labels_from = _labels(model_path, classes, labels_path)
    run = _as_run(model_path, sig)
    kinds: dict[str, int] = {}
    for s in sig.states:
        kind = "pool" if s.name.endswith(("pool_buffer", "pool_frame_count")) else (
            "stream" if s.name.endswith("stream_buffer") else "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "path": str(model_path),
        "model": catalogue_title(model_path, interpreter, sig, classes),
        "size_bytes": model_path.stat().st_size,
        "sha256": sha256_file(model_path),
        "runtime": f"{runtime.name} {runtime.version}",
        "signature": sig.key,
        "input_size": [sig.input_width, sig.input_height],
        "model_fps": MODEL_FPS,
        "num_classes": sig.num_classes,
        "states": len(sig.states),
        "state_kinds": kinds,
        "pool_pairs": len(sig.pool_pairs),
        "state_bytes": sig.state_bytes,
        **run,
        "quantization": weights_quantization(interpreter),
        "io": _io_types(interpreter, sig),
        "labels": labels_from,
        "first_labels": list(labels.names[:5]) if labels else [],
        "taught": None if head is None else {
            "classes": head.num_classes, "examples": head.examples, "clips": head.clips,
            "kind": head.kind, "base_sha256": head.base_sha256,
            "threshold": round(head.threshold, 4), "reject": head.reject,
        },
    }


def _labels(model_path: Path, classes: int,
            labels_path: Path | None) -> tuple[Labels | None, str]:
    """The labels a run of the model would get, and where they come from (else "none", and
    what to do about it): ``--labels``, those inside the model, the Kinetics-600 map found
    beside it or in the model folders."""
    if labels_path is not None:
        labels = load_labels(labels_path)
        check_label_count(labels, classes)
        return labels, f"{labels.source} (--labels)"
    try:
        labels = resolve_labels(model_path, classes)
    except MovinetPiError as e:
        return None, f"none: {e}"
    inside = labels.source.startswith(f"{model_path}:")
    return labels, f"{labels.source}{' (inside the model)' if inside else ''}"


def _as_run(model_path: Path, sig: Any) -> dict[str, Any]:
    """How the classifier runs this model: which inputs it narrows to int8
    (:mod:`movinet_pi.model.graph`) and how many state bytes it copies a step."""
    names = [s.name for s in sig.states]
    _, narrowed = narrow_for_streaming(model_path.read_bytes())
    as_int8 = {s.name for s in narrowed.states}
    carried = sum(s.nbytes // (4 if s.name in as_int8 else 1)
                  for s in sig.states if not s.passthrough)
    return {
        "int8_states": sorted(as_int8, key=names.index),
        "int8_image": narrowed.image,
        "carried_bytes": carried,
    }


def _format_run(info: dict[str, Any]) -> str:
    int8 = [f"{len(info['int8_states'])} stream states"] if info["int8_states"] else []
    int8 += ["the image"] if info["int8_image"] else []
    how = f"{' and '.join(int8)} as int8 (exact); " if int8 else ""
    return f"{how}{size_text(info['carried_bytes'])} of state copied a step"


def format_info(info: dict[str, Any]) -> str:
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(info["state_kinds"].items()))
    rows = [
        ("model", info["model"] or "not one of the catalogue's"),
        ("file", f"{info['path']} ({size_text(info['size_bytes'])})"),
        ("sha256", info["sha256"]),
        ("runtime", info["runtime"]),
        ("signature", info["signature"]),
        ("input", f"{info['input_size'][0]}x{info['input_size'][1]} RGB, "
                  f"one frame a step at {info['model_fps']:g} fps"),
        ("classes", f"{info['taught']['classes']} taught (the base model's: "
                    f"{info['num_classes']})" if info.get("taught") else str(info["num_classes"])),
        ("states", f"{info['states']} ({kinds}), {size_text(info['state_bytes'])}"),
        ("in / out", f"image {info['io']['image']}, logits {info['io']['logits']}"),
        ("as run", _format_run(info)),
        ("weights", info["quantization"]),
        ("labels", info["labels"]),
    ]
    if info["first_labels"]:
        rows.append(("first labels", ", ".join(info["first_labels"])))
    taught = info.get("taught")
    if taught:
        rows.append(("taught", f"{taught['classes']} classes, {taught['examples']} examples, "
                     f"from {taught['base_sha256'][:12]} ({taught['kind']}"
                     f"{', --reject' if taught['reject'] else ''})"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
