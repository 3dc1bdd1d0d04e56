"""Safe archive extraction: refuse entries that could escape the target folder (zip-slip)."""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath


class UnsafeArchive(ValueError):
    """An archive entry with an absolute path, a ``..`` component, or a link."""

    def __init__(self, archive, entry: str, reason: str):
        self.archive = str(archive)
        self.entry = entry
        super().__init__(
            f"refusing to extract {self.archive}: entry {entry!r} {reason}. The archive is "
            "unsafe (zip-slip); nothing was extracted. Report it to the data provider."
        )


def check_member_name(archive, name: str) -> PurePosixPath:
    """A relative POSIX path that stays inside the extraction folder, or UnsafeArchive."""
    if not name or "\x00" in name:
        raise UnsafeArchive(archive, name, "has an empty or NUL-containing name")
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        raise UnsafeArchive(archive, name, "has an absolute path")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UnsafeArchive(archive, name, "contains '..'")
    return PurePosixPath(*parts)


def safe_extract_zip(archive: str | Path, target: str | Path) -> list[Path]:
    """Extract regular files only; every entry is checked before anything is written."""
    target = Path(target)
    with zipfile.ZipFile(archive) as bundle:
        members = []
        for info in bundle.infolist():
            relative = check_member_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchive(archive, info.filename, "is a symbolic link")
            if not info.is_dir():
                members.append((info, relative))
        written = []
        for info, relative in members:
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, open(out, "wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            written.append(out)
    return written


def safe_extract_tar(archive: str | Path, target: str | Path) -> list[Path]:
    """Extract regular files of a (gzipped) tar; links and devices are refused."""
    target = Path(target)
    written = []
    with tarfile.open(archive, "r:*") as bundle:
        members = bundle.getmembers()
        for member in members:
            check_member_name(archive, member.name)
            if member.issym() or member.islnk():
                raise UnsafeArchive(archive, member.name, "is a link")
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchive(archive, member.name, "is not a regular file or folder")
        for member in members:
            if member.isfile():
                out = target / check_member_name(archive, member.name)
                out.parent.mkdir(parents=True, exist_ok=True)
                source = bundle.extractfile(member)
                with source, open(out, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
                written.append(out)
    return written
