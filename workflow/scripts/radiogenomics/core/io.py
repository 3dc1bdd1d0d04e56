"""Atomic, deterministic file output: a reader never sees a half-written result."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary name keeps the final suffix (e.g. ``.nii.gz``) so writers that infer the
    format from the extension work unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600 files; results are shared, so give them the usual permissions.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(obj, path: str | os.PathLike) -> None:
    write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n", path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_tsv(table: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> None:
    """Tab-separated, with a fixed float format so reruns are byte-identical."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=index, float_format="%.10g", lineterminator="\n")


def read_tsv(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", **kwargs)


def write_parquet(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


NIFTI_INTENT_LABEL = 1002  # nifti1.h: "the value at each voxel is an index into some set of labels"


def write_label_map(image, path: str | os.PathLike) -> None:
    """A mask or label image (SimpleITK) as a NIfTI label map: uint8 voxels, header intent
    ``NIFTI_INTENT_LABEL`` (1002, so that viewers such as 3D Slicer read labels, not
    intensities), written atomically and deterministically (the gzip stream holds no time or name).

    Every mask the workflow writes goes through here. Voxel values are kept exactly: a value
    that uint8 cannot hold (negative, above 255, fractional) raises ValueError, never a cast.
    ITK's NIfTI writer ignores an intent in the image's metadata, so SimpleITK writes the file
    uncompressed and :func:`_set_label_intent` sets the intent fields of its header; geometry,
    data offset and voxels stay byte for byte what SimpleITK wrote.
    """
    import gzip
    import shutil

    import SimpleITK as sitk

    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"{path}: a label map is written as .nii or .nii.gz")
    image = _as_uint8(image, path)
    with atomic_path(path) as tmp:
        raw = tmp if path.name.endswith(".nii") else tmp.with_name(tmp.name[: -len(".gz")])
        try:
            sitk.WriteImage(image, str(raw), useCompression=False)
            with open(raw, "r+b") as handle:
                _set_label_intent(handle, raw)
                if raw == tmp:
                    return
                handle.seek(0)
                with open(tmp, "wb") as target, gzip.GzipFile(
                    filename="", mode="wb", fileobj=target, mtime=0, compresslevel=6
                ) as stream:
                    shutil.copyfileobj(handle, stream, 1 << 20)
        finally:
            if raw != tmp:
                raw.unlink(missing_ok=True)


def _set_label_intent(handle, path) -> None:
    """Set intent_code = NIFTI_INTENT_LABEL, intent_p1..p3 = 0 and intent_name = "label" in the
    NIfTI-1 header of an open, uncompressed file (field offsets of nifti1.h; nibabel reads them
    back in the tests). Patched in place: importing nibabel would cost a per-patient job more
    than writing its masks."""
    import struct

    handle.seek(0)
    size = handle.read(4)
    order = next((o for o in "<>" if struct.unpack(f"{o}i", size)[0] == 348), None)
    if order is None:
        raise ValueError(f"{path}: SimpleITK did not write a NIfTI-1 header")
    handle.seek(56)  # intent_p1, intent_p2, intent_p3 (float32), intent_code (int16)
    handle.write(struct.pack(f"{order}fffh", 0.0, 0.0, 0.0, NIFTI_INTENT_LABEL))
    handle.seek(328)  # intent_name, char[16]
    handle.write(b"label".ljust(16, b"\0"))


def _as_uint8(image, path):
    """``image`` as a uint8 SimpleITK image with the same geometry and the same voxel values."""
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{path}: a label map has one value per voxel")
    if image.GetPixelID() == sitk.sitkUInt8:
        return image
    values = sitk.GetArrayViewFromImage(image)
    if values.size and (
        not np.array_equal(values, np.round(values)) or values.min() < 0 or values.max() > 255
    ):
        raise ValueError(
            f"{path}: label values must be whole numbers 0..255, got {values.min()}..{values.max()}"
        )
    out = sitk.GetImageFromArray(np.asarray(values, dtype=np.uint8))
    out.CopyInformation(image)
    return out


def write_color_table(entries, path: str | os.PathLike, comments=()) -> None:
    """A 3D Slicer colour table (``.ctbl``, its text format for a discrete lookup table): header
    ``# Color table file NAME``, ``comments`` as ``#`` lines, ``# N values``, then one line per
    entry ``value name R G B A`` (0-255). ``entries``: ``(value, name, (r, g, b, a))``; a name
    may not hold whitespace (Slicer splits on it). The header names the file, not its folder,
    so that the table is the same wherever the study runs.
    """
    lines = [f"# Color table file {Path(path).name}"]
    lines += [f"# {comment}" for comment in comments]
    lines.append(f"# {len(entries)} values")
    seen = set()
    for value, name, rgba in entries:
        value, rgba = int(value), tuple(int(c) for c in rgba)
        if value < 0 or value in seen:
            raise ValueError(f"{path}: label value {value} is negative or repeated")
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"{path}: label name {name!r} is empty or holds whitespace")
        if len(rgba) != 4 or not all(0 <= c <= 255 for c in rgba):
            raise ValueError(f"{path}: colour {rgba} of {name} is not four values 0..255")
        seen.add(value)
        lines.append(" ".join(map(str, (value, name, *rgba))))
    write_text("\n".join(lines) + "\n", path)
