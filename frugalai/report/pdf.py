"""The PDF edition, printed by headless Chromium from the HTML page (A4, the page's print
styles: a page break after the summary, tables and charts never split).

Chromium is a system program (``scripts/install-sysdeps`` installs it); without it ``--pdf``
is a one-line error naming what to install, and the other editions are still written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from frugalai.errors import ConfigError

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> Optional[str]:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 180.0) -> Path:
    """Print ``html_path`` to ``pdf_path`` (written atomically: a failed print leaves no
    half file)."""
    exe = find_chromium()
    if exe is None:
        raise ConfigError("--pdf needs Chromium (chromium --headless): install the Debian "
                          "package chromium (scripts/install-sysdeps)", key="pdf")
    tmp = pdf_path.with_name(pdf_path.name + ".part")
    with tempfile.TemporaryDirectory(prefix="frugalai-pdf-") as profile:
        cmd = [exe, "--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--no-pdf-header-footer",
               "--print-to-pdf-no-header", f"--print-to-pdf={tmp}",
               html_path.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"Chromium did not print {html_path} within {timeout_s:.0f} s",
                              key="pdf") from None
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"Chromium could not print {html_path}: {last}", key="pdf")
    tmp.replace(pdf_path)
    return pdf_path
