"""Small file writes that a power cut must not leave half done."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union


def atomic_write(path: Union[str, Path], text: str, mode: int = 0o644,
                 fsync: bool = False) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and a rename, so a
    reader sees the old content or the new, never a mix. ``fsync`` also makes the new
    content durable before the rename (for state that must survive a power cut; status
    files rewritten every few seconds do not need it, and SD cards wear)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
