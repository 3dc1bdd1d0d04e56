"""Per-output provenance sidecars: what made a figure or table, from which bytes, with which code.

Sidecar naming (one rule for every output): the output path with its extension replaced by
``.prov.json``; a compression suffix (``.gz``, ``.bz2``, ``.xz``, ``.zst``) is dropped together
with the extension before it. So ``results/figures/km.png`` and ``results/figures/km.svg`` share
``results/figures/km.prov.json`` (the contract in design.md), ``metrics.tsv`` gets
``metrics.prov.json`` and ``ct.nii.gz`` gets ``ct.prov.json``. Outputs of one rule that share a
stem share one sidecar, which lists each of them with its own sha256.

Times and the host name live only in the sidecar, never in the outputs, so outputs stay
byte-identical across reruns.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import inspect
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from radiogenomics.core.io import write_json

SIDECAR_SUFFIX = ".prov.json"
SCHEMA_VERSION = 1
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
LIBRARY_PACKAGE = "radiogenomics"
LIBRARY_DIR = Path(__file__).resolve().parents[1]
PROVENANCE_MODULES = {f"{LIBRARY_PACKAGE}.core.provenance", f"{LIBRARY_PACKAGE}.core.audit"}

# Distribution names (as pip knows them) whose versions every sidecar records.
TRACKED_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "SimpleITK",
    "nibabel",
    "pydicom",
    "pyradiomics",
    "scikit-learn",
    "scikit-survival",
    "lifelines",
    "statsmodels",
    "xgboost",
    "lightgbm",
    "shap",
    "torch",
    "timm",
    "pydeseq2",
    "gseapy",
    "matplotlib",
    "snakemake",
)

_CHUNK = 1 << 20


def sidecar_path(output_path: str | os.PathLike) -> Path:
    """The sidecar of an output (see the module docstring for the rule)."""
    path = Path(output_path)
    name = path.name
    for compression in COMPRESSION_SUFFIXES:
        if name.endswith(compression):
            name = name[: -len(compression)]
            break
    stem, dot, _ = name.rpartition(".")
    base = stem if dot and stem else name
    return path.with_name(base + SIDECAR_SUFFIX)


def is_sidecar(path: str | os.PathLike) -> bool:
    return str(path).endswith(SIDECAR_SUFFIX)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder as a sorted walk of (relative path, file sha256) pairs.

    Sidecars inside a folder are skipped, so writing provenance never changes a folder's hash.
    """
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not is_sidecar(p)):
        relative = file.relative_to(path).as_posix()
        digest.update(f"{relative}\0{sha256_file(file)}\n".encode())
    return "dir:" + digest.hexdigest()


def canonical_json(obj) -> str:
    """Key-sorted, whitespace-free JSON: equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def config_sha256(config: Mapping | None) -> str:
    return hashlib.sha256(canonical_json(config or {}).encode()).hexdigest()


def package_versions(packages: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode()


@functools.lru_cache(maxsize=8)
def workflow_version(repo_dir: str | os.PathLike = LIBRARY_DIR) -> dict:
    """Git commit of the workflow checkout; when the tracked tree is dirty, also its hash.

    The tree hash is a sorted walk over tracked files as they are on disk (not as staged), so
    two dirty checkouts with the same edits get the same hash.
    """
    repo_dir = Path(repo_dir)
    top = _git(["rev-parse", "--show-toplevel"], repo_dir)
    if top is None:
        return {"git_commit": None, "dirty": None, "tree_sha256": None, "repo_root": None}
    root = Path(top.strip())
    commit = (_git(["rev-parse", "HEAD"], root) or "").strip() or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], root) or ""
    dirty = bool(status.strip())
    tree = None
    if dirty:
        listing = _git(["ls-files", "-z"], root) or ""
        digest = hashlib.sha256()
        for name in sorted(filter(None, listing.split("\0"))):
            file = root / name
            content = sha256_file(file) if file.is_file() else "deleted"
            digest.update(f"{name}\0{content}\n".encode())
        tree = digest.hexdigest()
    return {"git_commit": commit, "dirty": dirty, "tree_sha256": tree, "repo_root": str(root)}


def loaded_library_modules() -> dict[str, str]:
    """sha256 of every library module this process has imported, keyed by path in the library.

    The shims are thin; the logic that made an output lives in these modules, so the audit can
    name the exact module whose code changed. The provenance machinery itself only writes
    sidecars, never outputs, so editing it does not count as a change to any result.
    """
    hashes = {}
    for name, module in list(sys.modules.items()):
        if name != LIBRARY_PACKAGE and not name.startswith(LIBRARY_PACKAGE + "."):
            continue
        if name in PROVENANCE_MODULES:
            continue
        file = getattr(module, "__file__", None)
        if not file or not Path(file).is_file():
            continue
        relative = Path(file).resolve().relative_to(LIBRARY_DIR.parent).as_posix()
        hashes[relative] = sha256_file(file)
    return dict(sorted(hashes.items()))


def _iso(moment) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, (int, float)):
        moment = dt.datetime.fromtimestamp(moment, tz=dt.timezone.utc)
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc).isoformat()
    return str(moment)


def _relative(path: str | os.PathLike, root: Path) -> str:
    """Paths are stored as Snakemake gives them: relative to the workdir when inside it."""
    path = Path(path)
    absolute = path if path.is_absolute() else root / path
    try:
        return absolute.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return absolute.resolve().as_posix()


def _flatten_paths(paths) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    if isinstance(paths, Mapping):
        paths = paths.values()
    flat = []
    for item in paths:
        flat.extend(_flatten_paths(item))
    return flat


def _script_record(script: str | os.PathLike | None) -> dict | None:
    if script is None:
        return None
    script = Path(script).resolve()
    version = workflow_version(script.parent)
    repo_path = None
    if version["repo_root"]:
        try:
            repo_path = script.relative_to(version["repo_root"]).as_posix()
        except ValueError:
            repo_path = None
    return {"path": str(script), "repo_path": repo_path, "sha256": sha256_file(script)}


def _plain(value):
    """Params may hold Snakemake containers or numpy scalars; store them as plain JSON."""
    return json.loads(json.dumps(value, default=_json_fallback))


def _json_fallback(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def infer_param_sources(params: Mapping | None, config: Mapping | None) -> dict[str, str]:
    """Map each param to the one config key that holds an equal value (ambiguous: left out).

    Shims get config values through params, so this lets the audit check params against a
    changed config without every rule declaring where its params came from.
    """
    locations: dict[str, list[str]] = {}

    def walk(node, prefix):
        if prefix:
            locations.setdefault(canonical_json(node), []).append(prefix)
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))

    walk(_plain(dict(config or {})), "")
    sources = {}
    for name, value in _plain(dict(params or {})).items():
        keys = locations.get(canonical_json(value), [])
        if len(keys) == 1:
            sources[name] = keys[0]
    return sources


def build_record(
    outputs,
    rule: str,
    wildcards: Mapping | None,
    params: Mapping | None,
    inputs,
    config: Mapping | None,
    seeds: Mapping | None,
    started,
    finished,
    log=None,
    script: str | os.PathLike | None = None,
    param_sources: Mapping[str, str] | None = None,
    root: str | os.PathLike | None = None,
) -> dict:
    """The sidecar content for ``outputs`` (all of which must map to one sidecar)."""
    root = Path(root) if root is not None else Path.cwd()
    outputs = _flatten_paths(outputs)
    input_paths = _flatten_paths(inputs)
    return {
        "schema_version": SCHEMA_VERSION,
        "rule": rule,
        "wildcards": _plain(dict(wildcards or {})),
        "params": _plain(dict(params or {})),
        "param_sources": {**infer_param_sources(params, config), **dict(param_sources or {})},
        "inputs": [
            {"path": _relative(p, root), "sha256": sha256_path(root / p)} for p in input_paths
        ],
        "outputs": [{"path": _relative(p, root), "sha256": sha256_path(root / p)} for p in outputs],
        "log": [_relative(p, root) for p in _flatten_paths(log)],
        "code": {
            "workflow": workflow_version(Path(script).resolve().parent if script else LIBRARY_DIR),
            "script": _script_record(script),
            "library_dir": str(LIBRARY_DIR),
            "library_modules": loaded_library_modules(),
        },
        "config_sha256": config_sha256(config),
        "config": _plain(dict(config or {})),
        "packages": package_versions(),
        "python": platform.python_version(),
        "seeds": _plain(dict(seeds or {})),
        "started": _iso(started),
        "finished": _iso(finished),
        "host": socket.gethostname(),
    }


def write_sidecar(
    output_path,
    rule: str,
    wildcards: Mapping | None,
    params: Mapping | None,
    inputs,
    config: Mapping | None,
    seeds: Mapping | None,
    started,
    finished,
    log=None,
    *,
    script: str | os.PathLike | None = None,
    param_sources: Mapping[str, str] | None = None,
    root: str | os.PathLike | None = None,
) -> list[Path]:
    """Write the sidecar(s) of one or more outputs; returns the sidecar paths.

    ``output_path`` is a path or a list of paths; outputs that share a stem share a sidecar.
    ``param_sources`` maps a param name to the dotted config key it came from (e.g.
    ``{"shell_mm": "regions.shell_mm"}``) so the audit can name the param that changed; params
    not declared there are matched to config keys by value (``infer_param_sources``).
    ``root`` is the Snakemake workdir (default: the current directory); relative paths are
    resolved against it and stored relative to it.
    """
    root = Path(root) if root is not None else Path.cwd()
    groups: dict[Path, list[str]] = {}
    for output in _flatten_paths(output_path):
        if is_sidecar(output):
            continue
        groups.setdefault(sidecar_path(output), []).append(output)
    written = []
    for sidecar, outputs in groups.items():
        record = build_record(
            outputs,
            rule,
            wildcards,
            params,
            inputs,
            config,
            seeds,
            started,
            finished,
            log,
            script=script,
            param_sources=param_sources,
            root=root,
        )
        target = sidecar if sidecar.is_absolute() else root / sidecar
        write_json(record, target)
        written.append(target)
    return written


def read_sidecar(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


def from_snakemake(
    snakemake,
    outputs=None,
    seeds: Mapping | None = None,
    started=None,
    param_sources: Mapping[str, str] | None = None,
    script: str | os.PathLike | None = None,
    inputs=None,
) -> list[Path]:
    """Sidecars for a Snakemake script job; call it last in a shim, after the outputs exist.

    ``outputs`` defaults to every output of the job, ``inputs`` to every input (pass more when
    the job also read files it found itself, like the report). ``started`` defaults to this process's start
    time (the job's script runs in its own process). ``script`` defaults to the calling shim,
    whose ``__file__`` Snakemake sets to the real script path.
    """
    if started is None:
        started = _process_start_time()
    if script is None:
        caller = inspect.currentframe().f_back.f_globals.get("__file__")
        script = caller if caller and Path(caller).is_file() else None
    return write_sidecar(
        outputs if outputs is not None else list(snakemake.output),
        rule=snakemake.rule,
        wildcards=dict(snakemake.wildcards.items()),
        params=dict(snakemake.params.items()),
        inputs=inputs if inputs is not None else list(snakemake.input),
        config=snakemake.config,
        seeds=seeds,
        started=started,
        finished=dt.datetime.now(dt.timezone.utc),
        log=list(snakemake.log),
        script=script,
        param_sources=param_sources,
    )


def _process_start_time():
    try:
        import psutil

        return psutil.Process().create_time()
    except (ImportError, OSError):
        return None
