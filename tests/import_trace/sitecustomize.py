"""Records what the project's own code imports in every Python process of a Snakemake run.

On PYTHONPATH with IMPORT_TRACE_DIR set (the tiny_study fixture does both), every `import`
statement executed in a file under IMPORT_TRACE_ROOTS (the library and the jobs' copies of the
shims) is noted with its top-level module and the importing file; at exit a job writes
{rule, imports} to IMPORT_TRACE_DIR/<pid>.json. Imports made by third-party packages are their
own dependencies and are not noted. tests/test_envs.py compares the notes with the rules' envs.
"""

import atexit
import builtins
import json
import os
import sys

_RECORDS = os.environ.get("IMPORT_TRACE_DIR")
_ROOTS = tuple(filter(None, os.environ.get("IMPORT_TRACE_ROOTS", "").split(os.pathsep)))
_imports: dict[str, str] = {}


def _noting_import(name, globals=None, locals=None, fromlist=(), level=0, _import=builtins.__import__):
    if level == 0 and globals:
        importer = globals.get("__file__") or ""
        if importer.startswith(_ROOTS):
            _imports.setdefault(name.partition(".")[0], importer)
    return _import(name, globals, locals, fromlist, level)


def _write_record():
    job = getattr(sys.modules.get("__main__"), "snakemake", None)
    rule = getattr(job, "rule", None)
    if rule is None:  # not a Snakemake script job (Snakemake itself, a helper process)
        return
    with open(os.path.join(_RECORDS, f"{os.getpid()}.json"), "w") as out:
        json.dump({"rule": rule, "imports": _imports}, out, sort_keys=True)


if _RECORDS and _ROOTS:
    builtins.__import__ = _noting_import
    atexit.register(_write_record)
