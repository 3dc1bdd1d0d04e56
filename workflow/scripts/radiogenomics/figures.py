"""Deterministic figure files: the same figure gives the same bytes on every run and host.

Matplotlib stamps a creation date into SVG and PDF and random ids into SVG; both are pinned
here, so reruns are byte-identical and provenance hashes stay stable.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from radiogenomics.io import atomic_path  # noqa: E402

_METADATA = {
    ".png": {"Software": None},
    ".svg": {"Date": None, "Creator": None},
    ".pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save atomically without timestamps; the format follows the extension (png/svg/pdf)."""
    path = Path(path)
    suffix = path.suffix.lower()
    with plt.rc_context({"svg.hashsalt": "radiogenomics", "svg.fonttype": "none"}):
        with atomic_path(path) as tmp:
            fig.savefig(
                tmp,
                dpi=dpi,
                format=suffix.lstrip("."),
                metadata=_METADATA.get(suffix),
                bbox_inches="tight",
            )
    return path
