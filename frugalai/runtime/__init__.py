"""Inference backends behind one interface, and model bundles (files + card + sha256).

Entry points: :func:`load_model`, :func:`self_test`, :func:`list_bundles`, :func:`available`.
Importing this package needs numpy only; runtimes load inside the backends.
"""

from __future__ import annotations

from frugalai.runtime.backends import PRECISIONS, Backend, runtime_available
from frugalai.runtime.bundle import Bundle, verify_bundle, write_card
from frugalai.runtime.model import BundleModel, available, list_bundles, load_model, resolve_bundle, self_test

__all__ = ["PRECISIONS", "Backend", "Bundle", "BundleModel", "available",
           "list_bundles", "load_model", "resolve_bundle", "runtime_available", "self_test",
           "verify_bundle", "write_card"]
