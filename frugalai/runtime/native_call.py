"""A direct Python -> C call for the ``native`` backend's one-row function.

The generated net runs in 0.05-0.1 us; called through ctypes, a row costs about 0.6 us,
nearly all of it the Python side: copying the row into a ctypes buffer, ctypes' argument
conversion, copying the output out (benchmarks/fastpath.py). This module compiles, once per
Python and numpy version, a tiny CPython extension whose ``caller(address, n_in, n_out)``
returns a builtin function ``f(row) -> float32 array`` that reads a float64 row in place
(numpy's C API), calls the C function at ``address`` (a ``void fn(const double *x, float
*y)`` of the bundle's library) and returns a new array. No state is shared between callers,
so two flows can use one library at once.

It needs the CPython headers (``Python.h``: ``apt-get install python3-dev`` on Raspberry Pi
OS, absent by default) and numpy's (always in the numpy wheel). Without them, or if the
build fails, :func:`caller_factory` gives the reason instead and the backend keeps ctypes
(``frugalai models show``/``doctor`` report which one runs). The extension is cached beside
the native libraries (:func:`frugalai.runtime.native.cache_dir`), named by the sha256 of its
source, compiler flags and the Python/numpy ABI.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from frugalai import digest as hashing

MODULE = "_frugalai_native_call"

SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdlib.h>

typedef void (*fa_row_fn)(const double *x, float *y);
typedef struct { fa_row_fn fn; npy_intp n_in; npy_intp n_out; } fa_caller;
static const char *CAPSULE = "frugalai.native_call.caller";

static PyObject *fa_call(PyObject *self, PyObject *x) {
    fa_caller *c = (fa_caller *)PyCapsule_GetPointer(self, CAPSULE);
    PyArrayObject *a;
    PyObject *y;
    npy_intp dims[1];
    if (c == NULL) return NULL;
    if (PyArray_CheckExact(x) && PyArray_TYPE((PyArrayObject *)x) == NPY_DOUBLE
        && PyArray_ISCARRAY_RO((PyArrayObject *)x)
        && PyArray_SIZE((PyArrayObject *)x) == c->n_in) {
        a = (PyArrayObject *)x;  /* the row itself: no copy */
        Py_INCREF(x);
    } else {
        a = (PyArrayObject *)PyArray_FROMANY(x, NPY_DOUBLE, 0, 0,
                                             NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST);
        if (a == NULL) return NULL;
        if (PyArray_SIZE(a) != c->n_in) {
            PyErr_Format(PyExc_ValueError, "the model takes %zd inputs, got %zd",
                         (Py_ssize_t)c->n_in, (Py_ssize_t)PyArray_SIZE(a));
            Py_DECREF(a);
            return NULL;
        }
    }
    dims[0] = c->n_out;
    y = PyArray_SimpleNew(1, dims, NPY_FLOAT32);
    if (y != NULL) c->fn((const double *)PyArray_DATA(a), (float *)PyArray_DATA((PyArrayObject *)y));
    Py_DECREF(a);
    return y;
}

static PyMethodDef fa_call_def = {"predict_one", (PyCFunction)fa_call, METH_O,
    "One float64 row -> the net's float32 outputs (a new array)."};

static void fa_free(PyObject *capsule) {
    free(PyCapsule_GetPointer(capsule, CAPSULE));
}

static PyObject *fa_make(PyObject *module, PyObject *args) {
    unsigned long long address;
    Py_ssize_t n_in, n_out;
    fa_caller *c;
    PyObject *capsule, *f;
    (void)module;
    if (!PyArg_ParseTuple(args, "Knn", &address, &n_in, &n_out)) return NULL;
    if (address == 0 || n_in <= 0 || n_out <= 0) {
        PyErr_SetString(PyExc_ValueError, "caller(address, n_in, n_out): bad arguments");
        return NULL;
    }
    c = (fa_caller *)malloc(sizeof *c);
    if (c == NULL) return PyErr_NoMemory();
    c->fn = (fa_row_fn)(size_t)address;
    c->n_in = n_in;
    c->n_out = n_out;
    capsule = PyCapsule_New(c, CAPSULE, fa_free);
    if (capsule == NULL) { free(c); return NULL; }
    f = PyCFunction_New(&fa_call_def, capsule);
    Py_DECREF(capsule);
    return f;
}

static PyMethodDef fa_methods[] = {
    {"caller", fa_make, METH_VARARGS,
     "caller(address, n_in, n_out): a function calling void fn(const double*, float*)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef fa_module = {PyModuleDef_HEAD_INIT, "_frugalai_native_call",
    "frugalai's direct call into a generated net.", -1, fa_methods};

PyMODINIT_FUNC PyInit__frugalai_native_call(void) {
    import_array();
    return PyModule_Create(&fa_module);
}
"""

RowCall = Callable[[Any], Any]
_loaded: dict[str, Any] = {}


def headers() -> Union[tuple[str, str], str]:
    """(Python include dir, numpy include dir), or why they are missing."""
    py = sysconfig.get_paths().get("include") or ""
    if not (Path(py) / "Python.h").is_file():
        return (f"no Python.h in {py or 'the Python install'} (apt-get install python3-dev): "
                "rows go through ctypes")
    return py, np.get_include()


def _flags(cc: str, inc: tuple[str, str]) -> list[str]:
    return [cc, "-O2", "-shared", "-fPIC", f"-I{inc[0]}", f"-I{inc[1]}"]


def build(cc: str, directory: Path) -> Union[Path, str]:
    """The extension's path in ``directory`` (compiled now if not cached), or why not."""
    inc = headers()
    if isinstance(inc, str):
        return inc
    suffix = (importlib.machinery.EXTENSION_SUFFIXES or [".so"])[0]
    key = "\0".join([SOURCE, *_flags(cc, inc), sys.version, np.__version__])
    target = directory / f"{MODULE}-{hashing.sha256(key.encode()).hexdigest()[:24]}{suffix}"
    if target.is_file():
        return target
    failed = compile_shared(_flags(cc, inc), SOURCE, target)
    return target if failed is None else f"{failed}: rows go through ctypes"


def compile_shared(flags: list[str], source: str, target: Path,
                   libraries: tuple[str, ...] = ()) -> Optional[str]:
    """Compile C ``source`` with ``flags`` (the compiler first) into the shared object
    ``target``, built in a temporary directory beside it and moved in place atomically (a
    concurrent build finds a whole file or none); None, or the failed command and its
    stderr. The native backend's libraries are built the same way."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / (target.name.split(".", 1)[0] + ".c")
        src.write_text(source)
        obj = Path(tmp) / target.name
        cmd = [*flags, "-o", str(obj), str(src), *libraries]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[:800]}"
        os.replace(obj, target)
    return None


def load(path: Path) -> Any:
    """Import the compiled extension at ``path`` (once per process)."""
    key = str(path)
    if key not in _loaded:
        loader = importlib.machinery.ExtensionFileLoader(MODULE, key)
        spec = importlib.util.spec_from_file_location(MODULE, key, loader=loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        _loaded[key] = module
    return _loaded[key]


def caller_factory(cc: Optional[str], directory: Path) -> Union[Callable[[int, int, int], RowCall],
                                                                 str]:
    """``make(address, n_in, n_out) -> f(row)``, or the reason rows must go through ctypes.
    ``FRUGALAI_NATIVE_CALL=ctypes`` forces ctypes (to compare, or to rule the extension out)."""
    if os.environ.get("FRUGALAI_NATIVE_CALL", "") == "ctypes":
        return "FRUGALAI_NATIVE_CALL=ctypes"
    if cc is None:
        return "no C compiler"
    built = build(cc, directory)
    if isinstance(built, str):
        return built
    try:
        module = load(built)
    except ImportError as err:
        return f"cannot import {built}: {err}: rows go through ctypes"
    make: Callable[[int, int, int], RowCall] = module.caller
    return make
