"""Each rule's conda env lists every third-party package its script can import.

The imports are traced, not listed by hand: the rule's script is parsed, and every module of the
project's library (workflow/scripts/radiogenomics) it imports is followed, with the imports inside
functions too (a lazy import runs in the same env). Import names are mapped to the distributions
that provide them in the project venv (importlib.metadata), and those to the env's conda and pip
names. `--sdm conda` builds these envs; a missing package there is a job that fails only on a
cluster or a fresh machine.
"""

import ast
import functools
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE

RULES = REPO / "workflow" / "rules"
SCRIPTS = REPO / "workflow" / "scripts"
LIBRARY = "radiogenomics"
# Snakemake puts its own installation on the path of every script it runs (the injected
# `snakemake` object); an env does not install it.
PROVIDED_BY_SNAKEMAKE = {"snakemake"}
# the genomics stage, one rule per analysis (workflow/rules/genomics.smk)
GENOMICS_RULES = {
    "genomics_expression", "genomics_deg", "genomics_wgcna", "genomics_enrichment", "genomics_deconvolution",
    "genomics_estimate", "genomics_tmb", "genomics_prognostic", "genomics_summary",
}
# conda-forge names that differ from the distribution's name on PyPI
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
RULE_HEADER = re.compile(r"^\s*(?:rule|checkpoint) (\w+):", re.M)
CONDA_FILE = re.compile(r'conda:\s*\n\s*f?"\{ENVS\}/([\w.-]+)"')
SCRIPT_FILE = re.compile(r'script:\s*\n\s*"\.\./scripts/([\w./-]+\.py)"')


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def rule_scripts_and_envs() -> dict[str, tuple[str | None, str | None]]:
    """rule -> (script under workflow/scripts, env file name), from the Snakefile's and rule files' text."""
    rules = {}
    for path in [REPO / "Snakefile", REPO / "workflow" / "Snakefile", *sorted(RULES.glob("*.smk"))]:
        text = path.read_text()
        headers = list(RULE_HEADER.finditer(text))
        for header, following in zip(headers, headers[1:] + [None]):
            block = text[header.end() : following.start() if following else len(text)]
            script, env = SCRIPT_FILE.search(block), CONDA_FILE.search(block)
            rules[header.group(1)] = (script and script.group(1), env and env.group(1))
    return rules


def env_packages(env_file: str) -> set[str]:
    spec = yaml.safe_load((REPO / "workflow" / "envs" / env_file).read_text())
    names = set()
    for entry in spec["dependencies"]:
        for requirement in entry["pip"] if isinstance(entry, dict) else [entry]:
            name = normalise(re.split(r"[=<>!~ \[]", requirement, maxsplit=1)[0])
            names.add(normalise(CONDA_TO_PYPI.get(name, name)))
    return names


def library_module_file(module: str) -> Path | None:
    """The file of a module of the project's library (a package's __init__), if it is one."""
    if module.split(".")[0] != LIBRARY:
        return None
    base = SCRIPTS.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SCRIPTS).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_statements(body):
    """Statements run when the module is imported: the body, and the branches of its if, with
    and try blocks (not those of a try that catches ImportError: an optional import)."""
    for node in body:
        if isinstance(node, ast.Try):
            catches = {ast.unparse(handler.type) for handler in node.handlers if handler.type}
            if any("ImportError" in caught or "ModuleNotFoundError" in caught for caught in catches):
                continue
            yield from _module_level_statements(node.body + node.orelse + node.finalbody)
        elif isinstance(node, (ast.If, ast.With)):
            yield from _module_level_statements(node.body + getattr(node, "orelse", []))
        else:
            yield node


def module_level_imports(path: Path) -> set[str]:
    """Absolute names of what a file imports when it is imported (imports inside functions run
    only when those are called: the tiny study's trace checks them)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ""
    if path.is_relative_to(SCRIPTS):
        package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in _module_level_statements(tree.body):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            # `from package import submodule` imports the submodule
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def third_party_imports(script: Path) -> dict[str, str]:
    """Top-level third-party modules that running the script imports before it does anything
    (its module-level imports, and theirs through the library) -> the file that imports it."""
    found, seen, pending = {}, set(), [script]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in module_level_imports(path):
            library_file = library_module_file(name)
            if library_file:
                pending.append(library_file)
                continue
            top = name.split(".")[0]
            if top != LIBRARY and top not in sys.stdlib_module_names and top not in PROVIDED_BY_SNAKEMAKE:
                found.setdefault(top, str(path.relative_to(REPO)))
    return found


@functools.cache
def _installed_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The project venv's distributions that provide a top-level module (normalised names)."""
    return {normalise(name) for name in _installed_distributions().get(module, [])}


def test_the_rule_files_are_read_as_snakemake_reads_them():
    listed = subprocess.run(
        [str(SNAKEMAKE), "--list-rules", "--snakefile", str(REPO / "Snakefile"),
         "--configfile", str(REPO / "config/tiny_nnunet.yaml")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    names = set(listed.stdout.split())
    # conditional rules (nnU-Net, synthetic or public cohorts) are defined once each in the files
    assert names <= set(rule_scripts_and_envs()), names - set(rule_scripts_and_envs())
    assert {"nnunet_train", "nnunet_predict", "radiomics", *GENOMICS_RULES} <= names


def lacking(env: str, modules: dict[str, str]) -> dict[str, str]:
    """The imported modules (-> importer) that no package of the env provides."""
    packages = env_packages(env)
    missing = {}
    for module, importer in sorted(modules.items()):
        providers = distributions_of(module)
        assert providers, f"{module} (imported by {importer}) is not installed in the project venv"
        if not providers & packages:
            missing[module] = f"{'/'.join(sorted(providers))} (imported by {importer})"
    return missing


@pytest.mark.parametrize("rule", sorted(rule_scripts_and_envs()))
def test_the_rules_env_provides_what_its_script_imports_on_start(rule):
    script, env = rule_scripts_and_envs()[rule]
    if script is None:
        pytest.skip(f"rule {rule} runs no script")
    assert env, f"rule {rule} has a script but no conda env"
    missing = lacking(env, third_party_imports(SCRIPTS / script))
    assert not missing, f"workflow/envs/{env} for rule {rule} lacks: {missing}"


@pytest.mark.workflow
def test_every_tiny_study_job_imported_only_what_its_env_provides(tiny_study):
    records = sorted((tiny_study / ".import_trace").glob("*.json"))
    if not records:
        pytest.skip("the tiny study (TINY_STUDY_DIR?) was run without import tracing (conftest.import_tracing_env)")
    envs = {rule: env for rule, (_, env) in rule_scripts_and_envs().items()}
    traced, problems = set(), {}
    for record in map(lambda path: json.loads(path.read_text()), records):
        rule = record["rule"]
        traced.add(rule)
        imports = {
            module: importer for module, importer in record["imports"].items()
            if module not in sys.stdlib_module_names and module not in PROVIDED_BY_SNAKEMAKE | {LIBRARY}
        }  # fmt: skip
        missing = lacking(envs[rule], imports)
        if missing:
            problems.setdefault(f"{rule} (workflow/envs/{envs[rule]})", {}).update(missing)
    assert not problems, problems
    # every script rule of the tiny study ran and was traced (lazy imports of its stage included)
    assert {"radiomics", "survival_radscore", "survival_xgboost", *GENOMICS_RULES, "pathomics_model",
            "deep_features"} <= traced  # fmt: skip


def test_module_level_imports_are_followed_through_the_library_and_optional_ones_skipped(tmp_path):
    # extract_radiomics.py imports radiogenomics modules that import PyRadiomics at module level
    assert "radiomics" in third_party_imports(SCRIPTS / "extract_radiomics.py")
    optional = tmp_path / "optional.py"
    optional.write_text(
        "import numpy\ntry:\n    import psutil\nexcept ImportError:\n    psutil = None\n"
        "if True:\n    import yaml\n\n\ndef later():\n    import torch\n"
    )
    assert module_level_imports(optional) == {"numpy", "yaml"}
    assert distributions_of("sksurv") == {"scikit-survival"} and distributions_of("yaml") == {"pyyaml"}
    assert {"torch", "pyradiomics", "scikit-learn"} <= env_packages("deep.yaml") | env_packages("imaging.yaml")
