"""movinet-pi: real-time action recognition with streaming MoViNet on a Raspberry Pi camera.

The public surface, for use from Python (the README's "Using the classifier from
Python" shows it at work)::

    from movinet_pi import StreamingClassifier, load_labels, open_source

* the model: :class:`StreamingClassifier` (one RGB frame in, probabilities out,
  :meth:`~StreamingClassifier.top_k`), :class:`Prediction`, :class:`Labels`,
  :func:`load_labels`, :func:`history_policy` (how far back the stream remembers);
* frames: :func:`open_source` (the Pi camera, a camera, a file or a stream),
  :class:`Source`, :class:`Frame`, and :class:`FrameSampler` (which frames are due
  at the model's 5 fps);
* a whole run: :class:`Pipeline` (capture, model and display threads) around a
  :class:`Recognizer` with its :class:`RunConfig`; :class:`ShownList` and
  :class:`LabelFilter` decide what is shown;
* :class:`MovinetPiError`, every error meant for the user (one line, an exit code).

The names are imported when first used, so ``import movinet_pi`` (and the CLI's
``--help``) stays cheap: no OpenCV, numpy or TFLite runtime until needed.
"""

from __future__ import annotations

import importlib
from typing import Any

from movinet_pi.errors import MovinetPiError
from movinet_pi.version import __version__

#: public name -> the module it lives in (imported on first use)
_PUBLIC = {
    "StreamingClassifier": "movinet_pi.model.classifier",
    "Prediction": "movinet_pi.model.predictions",
    "Labels": "movinet_pi.model.labels",
    "load_labels": "movinet_pi.model.labels",
    "history_policy": "movinet_pi.model.adaptive",
    "Frame": "movinet_pi.sources.base",
    "Source": "movinet_pi.sources.base",
    "open_source": "movinet_pi.sources.open",
    "FrameSampler": "movinet_pi.timing",
    "Pipeline": "movinet_pi.pipeline",
    "Recognizer": "movinet_pi.recognizer",
    "RunConfig": "movinet_pi.recognizer",
    "ShownList": "movinet_pi.display.shown",
    "LabelFilter": "movinet_pi.display.shown",
}

__all__ = ["MovinetPiError", "__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'movinet_pi' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
