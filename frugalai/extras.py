"""Optional extras: which ``pip install 'frugalai[...]'`` brings a missing module.

Heavy runtimes are optional and imported late, so a command that needs one fails at its import.
:func:`missing_extra` turns that ImportError (or a FrugalError caused by one) into one sentence
naming the extra; ``frugalai`` prints it and exits 2 on every command (see ``cli.main``).
"""

from __future__ import annotations

import importlib
from typing import Optional

#: top-level module -> (extra, distribution that provides it).
EXTRA_OF_MODULE: dict[str, tuple[str, str]] = {
    "sklearn": ("train", "scikit-learn"),
    "skl2onnx": ("train", "skl2onnx"),
    "onnx": ("train", "onnx"),
    "tflite": ("train", "tflite"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "ai_edge_litert": ("tflite", "ai-edge-litert"),
    "tflite_runtime": ("tflite", "tflite-runtime"),
    "paho": ("mqtt", "paho-mqtt"),
    "matplotlib": ("bench", "matplotlib"),
    "cryptography": ("sign", "cryptography"),
    "psycopg": ("central", "psycopg[binary]"),
}

#: the modules each extra must make importable (``frugalai doctor`` checks them per flow).
MODULES_OF_EXTRA: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime",),
    "tflite": ("ai_edge_litert",),
    "mqtt": ("paho.mqtt.client",),
    "train": ("sklearn", "skl2onnx", "onnx"),
    "bench": ("matplotlib",),
    "sign": ("cryptography",),
    "central": ("psycopg",),
}


class MissingExtraError(ImportError):
    """A module of an optional extra is not installed; the message names the extra."""

    def __init__(self, module: str, extra: str, dist: str, needed_by: str = "") -> None:
        self.module, self.extra, self.dist = module, extra, dist
        who = f"{needed_by} needs" if needed_by else "needs"
        super().__init__(f"{who} {dist} (module {module}), from the '{extra}' extra: "
                         f"pip install 'frugalai[{extra}]'", name=module)


def install_hint(extra: str) -> str:
    return f"pip install 'frugalai[{extra}]'"


def _module_error(err: BaseException) -> Optional[MissingExtraError]:
    if isinstance(err, MissingExtraError):
        return err
    if isinstance(err, ImportError) and err.name:
        top = err.name.split(".")[0]
        if top in EXTRA_OF_MODULE:
            extra, dist = EXTRA_OF_MODULE[top]
            return MissingExtraError(top, extra, dist)
    return None


def missing_extra(err: BaseException) -> Optional[MissingExtraError]:
    """The missing extra behind ``err`` (itself or any ``__cause__``), or None."""
    seen: set[int] = set()
    current: Optional[BaseException] = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _module_error(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def require(extra: str, needed_by: str = "", modules: Optional[tuple[str, ...]] = None) -> None:
    """Import the modules of ``extra`` (or only ``modules`` of it) now, before a command spends
    minutes on data; MissingExtraError naming the extra if one is missing."""
    for module in modules or MODULES_OF_EXTRA[extra]:
        try:
            importlib.import_module(module)
        except ImportError as err:
            top = module.split(".")[0]
            raise MissingExtraError(top, extra, EXTRA_OF_MODULE.get(top, (extra, top))[1],
                                    needed_by) from err


def extra_available(extra: str) -> Optional[str]:
    """None when ``extra``'s modules import, else the reason (one line with the hint)."""
    try:
        require(extra)
    except MissingExtraError as err:
        return str(err)
    return None
