"""The project's one figure writer: the same figure gives the same bytes on every run and host.

Matplotlib stamps a creation date into SVG and PDF and random ids into SVG; both are pinned
here, so reruns are byte-identical and provenance hashes stay stable. Every figure of the
output contract is ``results/figures/{name}.png`` + ``.svg`` (:func:`save_png_svg`); the
provenance sidecar they share is written by the rule's shim (``provenance.from_snakemake``),
after all outputs exist.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from radiogenomics.core.io import atomic_path  # noqa: E402

PNG_DPI = 150
_METADATA = {
    ".png": {"Software": None},
    ".svg": {"Date": None, "Creator": None},
    ".pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


def save_figure(
    fig,
    path: str | os.PathLike,
    dpi: int = PNG_DPI,
    metadata: dict | None = None,
    bbox_inches: str | None = "tight",
) -> Path:
    """Save atomically without timestamps; the format follows the extension (png/svg/pdf).

    ``metadata`` replaces the pinned metadata of the format (``None``: no software tag, no
    date); ``bbox_inches`` is matplotlib's (``None``: the figure's own size).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    with plt.rc_context({"svg.hashsalt": "radiogenomics", "svg.fonttype": "none"}):
        with atomic_path(path) as tmp:
            fig.savefig(
                tmp,
                dpi=dpi,
                format=suffix.lstrip("."),
                metadata=_METADATA.get(suffix) if metadata is None else metadata,
                bbox_inches=bbox_inches,
            )
    return path


def save_png_svg(fig, stem: str | os.PathLike, dpi: int = PNG_DPI) -> list[Path]:
    """Write ``{stem}.png`` and ``{stem}.svg`` (see :func:`save_figure`) and close the figure."""
    stem = Path(stem)
    paths = [save_figure(fig, stem.with_name(f"{stem.name}.{fmt}"), dpi=dpi) for fmt in ("png", "svg")]
    plt.close(fig)
    return paths
