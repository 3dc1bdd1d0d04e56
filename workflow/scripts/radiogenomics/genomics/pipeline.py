"""The genomics stage, one function per analysis (one Snakemake rule each), and all of them in a row.

:func:`prepare_expression` writes the shared inputs: the filtered counts of the patients with
expression and a score, their log2 normalised expression and the high/low score groups
(``out_dir/intermediate/``, parquet: exact values) with ``normalisation.json``. Each analysis then
reads them and writes its tables to ``out_dir`` and its figures to ``figures_dir`` as
``genomics_*.{png,svg}``; the names each one writes are listed in :data:`OUTPUTS`:

- :func:`run_deg`: ``deg.tsv`` (and the full-precision ``intermediate/deg.parquet`` the later
  analyses rank on), volcano, PCA and heatmap;
- :func:`run_wgcna_analysis`: ``wgcna_*.tsv`` (and ``intermediate/wgcna.json``), soft threshold
  and module-trait figures;
- :func:`run_enrichment_analysis`: ``enrichment.tsv`` (DEG ORA + GSEA, ORA of the modules most
  correlated with the score), dot plot;
- :func:`run_deconvolution`, :func:`run_estimate`: the tables, their group tests and figures;
- :func:`run_tmb` (only with a MAF), :func:`run_prognostic`: TMB and the DEGs' survival;
- :func:`write_summary`: ``summary.json`` from the analyses' outputs.

:func:`run_genomics` runs them all in that order (tests, benchmarks). Parameters come from the
config block ``genomics`` (see :data:`DEFAULTS`); each function reads only its own keys. Every
function bounds BLAS threads to ``threads`` (the rule's ``threads``, threadpoolctl): OpenBLAS
threads left free oversubscribe the cores inside PyDESeq2's per-gene loops and WGCNA's
per-module eigengenes, which then run many times slower (benchmarks/genomics_stage.py --blas-ratio).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from radiogenomics.genomics import compare, deconvolution, deg, enrichment, estimate, figures, inputs, tmb, wgcna
from radiogenomics.core.figure_writer import save_png_svg
from radiogenomics.core.io import read_tsv, write_json, write_parquet, write_tsv

log = logging.getLogger(__name__)

DEFAULTS = {
    "group_high": "high",
    "group_low": "low",
    "cohorts": None,
    "seed": 0,
    "min_count": 10,
    "min_fraction": 0.2,
    "deg": {"method": "deseq2", "padj_max": 0.05, "abs_log2fc_min": 1.0, "shrink": True, "n_cpus": 1,
            "covariates": [], "paired": None},
    "enrichment": {"permutations": 1000, "min_size": 5, "max_size": 500, "gsea": True, "top_modules": 2},
    "wgcna": {"network_type": "signed", "r2_threshold": 0.8, "powers": [1, 20], "power": None,
              "min_module_size": 30, "deep_split": 2, "pam_stage": True, "cut_height": None, "min_kme": 0.3,
              "merge_cut_height": 0.25,
              "top_variable_genes": 5000},
    "deconvolution": {"permutations": 100, "svr_tolerance": 1e-3},
    "tmb": {"exome_mb": 38.0, "top_degs": 10},
    "survival": {"top_degs": 10, "time": "os_months", "event": "os_event"},
}

# The shared inputs every analysis reads (under out_dir).
INTERMEDIATE = {
    "counts": "intermediate/counts.parquet",          # filtered raw counts, genes x patients
    "expression": "intermediate/expression.parquet",  # log2(median-of-ratios normalised + 1)
    "groups": "intermediate/groups.parquet",          # patient_id, score, group
}
# What each analysis writes: tables (under out_dir) and figures (genomics_{name}.png/.svg under figures_dir).
OUTPUTS = {
    "expression": {"tables": ["normalisation.json", *INTERMEDIATE.values()], "figures": []},
    "deg": {"tables": ["deg.tsv", "intermediate/deg.parquet"], "figures": ["volcano", "deg_pca", "deg_heatmap"]},
    "wgcna": {"tables": ["wgcna_modules.tsv", "wgcna_soft_power.tsv", "wgcna_eigengenes.tsv",
                         "wgcna_module_trait.tsv", "intermediate/wgcna.json"],
              "figures": ["wgcna_soft_threshold", "wgcna_module_trait"]},
    "enrichment": {"tables": ["enrichment.tsv"], "figures": ["enrichment_dotplot"]},
    "deconvolution": {"tables": ["deconvolution.tsv", "deconvolution_tests.tsv"],
                      "figures": ["deconvolution_bars", "deconvolution_boxplots"]},
    "estimate": {"tables": ["estimate.tsv", "estimate_tests.tsv"], "figures": ["estimate_boxplots"]},
    "tmb": {"tables": ["tmb.tsv", "mutation_status.tsv", "deg_tmb.tsv"], "figures": []},
    "prognostic": {"tables": ["prognostic_degs.tsv"], "figures": ["km_top_degs"]},
    "summary": {"tables": ["summary.json"], "figures": []},
}
PROGNOSTIC_COLUMNS = ["gene", "n_high", "n_low", "chisq", "pvalue"]


def merged_params(params: dict | None) -> dict:
    """Config values over :data:`DEFAULTS`, one level of nesting deep."""
    result = copy.deepcopy(DEFAULTS)
    for key, value in (params or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key].update(value)
        else:
            result[key] = value
    return result


def bounded_blas(function):
    """Run ``function`` with BLAS limited to its ``threads`` keyword (default 1)."""

    @functools.wraps(function)
    def bounded(*args, threads: int = 1, **kwargs):
        with threadpool_limits(limits=threads, user_api="blas"):
            return function(*args, threads=threads, **kwargs)

    return bounded


def _figure(fig, figures_dir, name: str) -> None:
    save_png_svg(fig, Path(figures_dir) / f"genomics_{name}")


# --------------------------------------------------------------------------- shared inputs
def prepare_expression(counts_path, samples_path, scores_path, out_dir, params: dict | None = None) -> dict:
    """Patient-level counts of the patients with expression and a score (one sample each, the
    ``deg.paired`` test kind when paired), filtered for expression, their log2 normalised
    expression and high/low groups; returns the normalisation record."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    sample_counts, samples = inputs.load_sample_counts(counts_path, samples_path)
    paired = p["deg"]["paired"]
    inputs.require_sample_columns(samples, list(p["deg"]["covariates"]) + ([paired["column"]] if paired else []),
                                  samples_path)
    counts, _ = inputs.one_sample_per_patient(
        sample_counts, samples, *((paired["column"], paired["test"]) if paired else ()))
    counts, metadata = inputs.join_scores(counts, read_tsv(scores_path, dtype={"patient_id": str}),
                                          high=p["group_high"], low=p["group_low"], cohorts=p["cohorts"])
    counts = inputs.filter_expressed(counts, p["min_count"], p["min_fraction"])
    log_expression, record = inputs.normalise(counts, log2=True)
    write_parquet(counts.rename_axis("gene").reset_index(), out_dir / INTERMEDIATE["counts"])
    write_parquet(log_expression.rename_axis("gene").reset_index(), out_dir / INTERMEDIATE["expression"])
    groups = metadata.rename_axis("patient_id").reset_index()
    groups["group"] = groups["group"].astype(str)
    write_parquet(groups, out_dir / INTERMEDIATE["groups"])
    write_json(record, out_dir / "normalisation.json")
    log.info("expression: %d genes x %d patients", *counts.shape)
    return record


def read_matrix(path) -> pd.DataFrame:
    """An intermediate genes x patients matrix (index ``gene``)."""
    matrix = pd.read_parquet(path).set_index("gene")
    matrix.columns = [str(c) for c in matrix.columns]
    return matrix


def read_groups(path, high: str = "high", low: str = "low") -> pd.DataFrame:
    """The intermediate groups as :func:`inputs.join_scores` returns them: index patient_id,
    ``score`` and ``group`` (an ordered categorical low < high)."""
    table = pd.read_parquet(path)
    table["patient_id"] = table["patient_id"].astype(str)
    table = table.set_index("patient_id")
    table["group"] = pd.Categorical(table["group"].astype(str), categories=[low, high], ordered=True)
    return table


def read_degs(path) -> pd.DataFrame:
    return pd.read_parquet(path)


def top_degs(degs: pd.DataFrame, n: int) -> list[str]:
    """The first ``n`` significant genes in deg.tsv's order (adjusted p)."""
    return degs.loc[degs["direction"] != "ns", "gene"].head(n).tolist()


# --------------------------------------------------------------------------- analyses
def load_traits(metadata: pd.DataFrame, features_path: str | Path | None = None,
                selected_path: str | Path | None = None) -> pd.DataFrame:
    """WGCNA traits: the score plus the selected imaging features (radiomics parquet columns
    named in selected_features.tsv), rows = patients of ``metadata``."""
    traits = metadata[["score"]].copy()
    if features_path and selected_path:
        features = pd.read_parquet(features_path).set_index("patient_id")
        features.index = features.index.astype(str)
        selected = [f for f in read_tsv(selected_path)["feature"] if f in features.columns]
        traits = traits.join(features[selected], how="left")
    return traits


def differential_expression(sample_counts: pd.DataFrame, samples: pd.DataFrame, counts: pd.DataFrame,
                            metadata: pd.DataFrame, patient_samples: pd.DataFrame, options: dict, high: str,
                            low: str, threads: int = 1) -> pd.DataFrame:
    """deg.tsv: high vs low imaging score across patients (one sample each, rows of
    ``patient_samples``), or with ``options["paired"]`` = {column, test, reference} ``test`` vs
    ``reference`` samples within the same patients (design ~ patient_id + covariates + column,
    several samples per patient). ``options["covariates"]`` are samples.tsv columns adjusted for."""
    settings = {k: options[k] for k in ("method", "padj_max", "abs_log2fc_min", "shrink", "n_cpus")}
    covariates = list(options["covariates"])
    paired = options["paired"]
    if not paired:
        design = metadata.join(patient_samples[covariates])
        return deg.differential_expression(counts, design, factor="group", test=high, reference=low,
                                           covariates=covariates, threads=threads, **settings)
    pair_counts, pair_samples = inputs.paired_samples(sample_counts.loc[counts.index], samples, paired["column"],
                                                      paired["test"], paired["reference"], metadata.index)
    return deg.differential_expression(pair_counts, pair_samples, factor=paired["column"], test=paired["test"],
                                       reference=paired["reference"], covariates=covariates,
                                       pair_by="patient_id", threads=threads, **settings)


@bounded_blas
def run_deg(counts_path, samples_path, out_dir, figures_dir, params: dict | None = None, threads: int = 1) -> dict:
    """deg.tsv (PyDESeq2 or limma-voom, high vs low) and its volcano, PCA and heatmap figures.
    ``counts_path`` / ``samples_path`` are the raw tables (covariates, paired samples)."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    high, low = p["group_high"], p["group_low"]
    counts = read_matrix(out_dir / INTERMEDIATE["counts"])
    log_expression = read_matrix(out_dir / INTERMEDIATE["expression"])
    metadata = read_groups(out_dir / INTERMEDIATE["groups"], high, low)
    sample_counts, samples = inputs.load_sample_counts(counts_path, samples_path)
    paired = p["deg"]["paired"]
    _, patient_samples = inputs.one_sample_per_patient(
        sample_counts, samples, *((paired["column"], paired["test"]) if paired else ()))
    degs = differential_expression(sample_counts, samples, counts, metadata, patient_samples, p["deg"], high, low,
                                   threads)
    write_tsv(degs, out_dir / "deg.tsv")
    write_parquet(degs, out_dir / "intermediate/deg.parquet")
    significant = degs[degs["direction"] != "ns"]
    _figure(figures.volcano(degs, p["deg"]["padj_max"], p["deg"]["abs_log2fc_min"]), figures_dir, "volcano")
    _figure(figures.pca_on_degs(log_expression, significant["gene"].tolist(), metadata["group"]), figures_dir,
            "deg_pca")
    _figure(figures.top_deg_heatmap(log_expression, degs, metadata["group"]), figures_dir, "deg_heatmap")
    return {"n_up": int((degs["direction"] == "up").sum()), "n_down": int((degs["direction"] == "down").sum())}


@bounded_blas
def run_wgcna_analysis(out_dir, figures_dir, features_path=None, selected_path=None, params: dict | None = None,
                       threads: int = 1) -> dict:
    """WGCNA modules of the log2 expression, module-trait correlations (score + selected imaging
    features); ``intermediate/wgcna.json`` holds the power, the module count and the modules
    ranked by |r| with the score (the enrichment step's order)."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    w = p["wgcna"]
    log_expression = read_matrix(out_dir / INTERMEDIATE["expression"])
    metadata = read_groups(out_dir / INTERMEDIATE["groups"], p["group_high"], p["group_low"])
    traits = load_traits(metadata, features_path, selected_path)
    network = wgcna.run_wgcna(log_expression.T, powers=range(w["powers"][0], w["powers"][1] + 1),
                              network_type=w["network_type"], r2_threshold=w["r2_threshold"], power=w["power"],
                              min_module_size=w["min_module_size"], deep_split=w["deep_split"],
                              pam_stage=w["pam_stage"], cut_height=w["cut_height"],
                              min_kme=w["min_kme"], merge_cut_height=w["merge_cut_height"],
                              top_variable_genes=w["top_variable_genes"])
    write_tsv(network.modules, out_dir / "wgcna_modules.tsv")
    write_tsv(network.soft_power_table, out_dir / "wgcna_soft_power.tsv")
    write_tsv(network.eigengenes.rename_axis("patient_id").reset_index(), out_dir / "wgcna_eigengenes.tsv")
    _figure(figures.soft_threshold_plot(network.soft_power_table, network.power, w["r2_threshold"]), figures_dir,
            "wgcna_soft_threshold")
    module_trait = pd.DataFrame(columns=["module", "trait", "r", "pvalue"])
    if not network.eigengenes.empty:
        module_trait = wgcna.module_trait_correlation(network.eigengenes, traits)
        fig = figures.module_trait_heatmap(module_trait)
    else:
        fig = figures.message("Module-trait relationships",
                              "WGCNA found no module (every gene grey): no module-trait correlation")
    _figure(fig, figures_dir, "wgcna_module_trait")
    write_tsv(module_trait, out_dir / "wgcna_module_trait.tsv")
    score_rows = module_trait[module_trait["trait"] == "score"]
    ranked = score_rows.reindex(score_rows["r"].abs().sort_values(ascending=False, kind="mergesort").index)
    result = {"wgcna_power": network.power,
              "wgcna_modules": int(network.modules.loc[network.modules["module"] != wgcna.GREY, "module"].nunique()),
              "modules_by_score": [str(m) for m in ranked["module"]]}
    write_json(result, out_dir / "intermediate/wgcna.json")
    return result


@bounded_blas
def run_enrichment_analysis(out_dir, figures_dir, gene_set_paths: dict, params: dict | None = None,
                            threads: int = 1) -> pd.DataFrame:
    """enrichment.tsv: ORA (up, down, all DEGs) and prerank GSEA per library, then ORA of the
    ``enrichment.top_modules`` WGCNA modules most correlated with the score (universe = WGCNA
    genes); the dot plot of the top DEG ORA terms."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    e = p["enrichment"]
    degs = read_degs(out_dir / "intermediate/deg.parquet")
    modules = read_tsv(out_dir / "wgcna_modules.tsv", dtype={"gene": str, "module": str}, keep_default_na=False)
    ranked = json.loads((out_dir / "intermediate/wgcna.json").read_text())["modules_by_score"]
    enriched = enrichment.run_enrichment(degs, gene_set_paths, permutations=e["permutations"], seed=p["seed"],
                                         min_size=e["min_size"], max_size=e["max_size"], gsea=e["gsea"])
    module_parts = []
    for module in ranked[: e["top_modules"]]:
        members = modules.loc[modules["module"] == module, "gene"].tolist()
        for library, path in gene_set_paths.items():
            part = enrichment.over_representation(members, enrichment.read_gmt(path), modules["gene"].tolist(),
                                                  library, module, e["min_size"], e["max_size"])
            part["method"] = "ora_wgcna_module"
            module_parts.append(part)
    enriched = pd.concat([enriched, *[m for m in module_parts if not m.empty]], ignore_index=True)
    write_tsv(enriched, out_dir / "enrichment.tsv")
    _figure(figures.enrichment_dotplot(enriched), figures_dir, "enrichment_dotplot")
    return enriched


@bounded_blas
def run_deconvolution(out_dir, figures_dir, signature_path, params: dict | None = None,
                      threads: int = 1) -> pd.DataFrame:
    """deconvolution.tsv (nu-SVR on median-of-ratios normalised counts against the signature
    matrix), Mann-Whitney tests high vs low (deconvolution_tests.tsv), stacked bars and boxplots."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    high, low = p["group_high"], p["group_low"]
    counts = read_matrix(out_dir / INTERMEDIATE["counts"])
    metadata = read_groups(out_dir / INTERMEDIATE["groups"], high, low)
    linear_expression = counts / inputs.size_factors(counts)
    signature = read_tsv(signature_path).set_index("gene")
    fractions = deconvolution.deconvolve(linear_expression, signature, permutations=p["deconvolution"]["permutations"],
                                         seed=p["seed"], svr_tolerance=p["deconvolution"]["svr_tolerance"]).rename(
        columns={"sample": "patient_id"})
    write_tsv(fractions, out_dir / "deconvolution.tsv")
    cell_fractions = fractions.set_index("patient_id")[list(signature.columns)]
    cell_tests = compare.compare_groups(cell_fractions, metadata["group"], high, low)
    write_tsv(cell_tests, out_dir / "deconvolution_tests.tsv")
    _figure(figures.stacked_fractions(cell_fractions, metadata["group"]), figures_dir, "deconvolution_bars")
    _figure(figures.group_boxplots(cell_fractions, metadata["group"], cell_tests, "Immune cell fractions"),
            figures_dir, "deconvolution_boxplots")
    return fractions


@bounded_blas
def run_estimate(out_dir, figures_dir, estimate_gmt, params: dict | None = None, threads: int = 1) -> pd.DataFrame:
    """estimate.tsv (stromal, immune, ESTIMATE scores by ssGSEA of the two signatures), tests high
    vs low (estimate_tests.tsv) and boxplots."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    high, low = p["group_high"], p["group_low"]
    log_expression = read_matrix(out_dir / INTERMEDIATE["expression"])
    metadata = read_groups(out_dir / INTERMEDIATE["groups"], high, low)
    scores = estimate.estimate_scores(log_expression, enrichment.read_gmt(estimate_gmt)).rename(
        columns={"sample": "patient_id"})
    write_tsv(scores, out_dir / "estimate.tsv")
    estimate_values = scores.set_index("patient_id")
    estimate_tests = compare.compare_groups(estimate_values, metadata["group"], high, low)
    write_tsv(estimate_tests, out_dir / "estimate_tests.tsv")
    _figure(figures.group_boxplots(estimate_values[["stromal_score", "immune_score", "estimate_score"]],
                                   metadata["group"], estimate_tests, "ESTIMATE"), figures_dir, "estimate_boxplots")
    return scores


@bounded_blas
def run_tmb(out_dir, maf_path, samples_path, params: dict | None = None, threads: int = 1) -> pd.DataFrame:
    """tmb.tsv (non-synonymous mutations per Mb of ``tmb.exome_mb``), mutation_status.tsv and the
    Spearman correlation of the top ``tmb.top_degs`` DEGs with TMB (deg_tmb.tsv)."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    log_expression = read_matrix(out_dir / INTERMEDIATE["expression"])
    degs = read_degs(out_dir / "intermediate/deg.parquet")
    patients = list(log_expression.columns)
    maf = tmb.read_maf(maf_path)
    sample_map = dict(read_tsv(samples_path, dtype=str)[["sample_id", "patient_id"]].itertuples(index=False))
    burden = tmb.tumour_mutation_burden(maf, patients, p["tmb"]["exome_mb"], sample_map)
    write_tsv(burden, out_dir / "tmb.tsv")
    status = tmb.mutation_status(maf, patients, sample_map=sample_map)
    write_tsv(status.reset_index(), out_dir / "mutation_status.tsv")
    write_tsv(tmb.deg_tmb_correlation(log_expression, burden, top_degs(degs, p["tmb"]["top_degs"])),
              out_dir / "deg_tmb.tsv")
    return burden


@bounded_blas
def run_prognostic(out_dir, figures_dir, clinical_path, params: dict | None = None, threads: int = 1) -> pd.DataFrame:
    """prognostic_degs.tsv: log-rank test of a median split of each of the top ``survival.top_degs``
    DEGs, with Kaplan-Meier curves. Without a significant DEG the table is empty (its columns
    only) and the figure says so."""
    p = merged_params(params)
    out_dir = Path(out_dir)
    s = p["survival"]
    log_expression = read_matrix(out_dir / INTERMEDIATE["expression"])
    genes = top_degs(read_degs(out_dir / "intermediate/deg.parquet"), s["top_degs"])
    if not genes:
        table = pd.DataFrame(columns=PROGNOSTIC_COLUMNS)
        write_tsv(table, out_dir / "prognostic_degs.tsv")
        _figure(figures.message("Prognostic DEGs", "no significant DEG: no survival analysis of DEGs"), figures_dir,
                "km_top_degs")
        return table
    survival = read_tsv(clinical_path, dtype={"patient_id": str}).set_index("patient_id")
    survival = survival.dropna(subset=[s["time"], s["event"]])
    table = compare.median_split_survival(log_expression, survival, genes, s["time"], s["event"])
    write_tsv(table, out_dir / "prognostic_degs.tsv")
    _figure(figures.km_top_genes(log_expression, survival, genes, s["time"], s["event"]), figures_dir,
            "km_top_degs")
    return table


def write_summary(normalisation_path, deg_path, wgcna_path, summary_path) -> dict:
    """summary.json: genes and patients analysed, DEGs up/down, WGCNA power and module count."""
    record = json.loads(Path(normalisation_path).read_text())
    directions = read_tsv(deg_path, usecols=["direction"], dtype=str)["direction"]
    network = json.loads(Path(wgcna_path).read_text())
    summary = {"n_genes": int(record["n_genes"]), "n_patients": int(record["n_samples"]),
               "n_up": int((directions == "up").sum()), "n_down": int((directions == "down").sum()),
               "wgcna_power": network["wgcna_power"], "wgcna_modules": int(network["wgcna_modules"])}
    write_json(summary, summary_path)
    return summary


def run_genomics(counts_path, samples_path, scores_path, out_dir, figures_dir, gene_set_paths: dict,
                 estimate_gmt, signature_path, maf_path=None, clinical_path=None, features_path=None,
                 selected_path=None, params: dict | None = None, threads: int = 1) -> dict:
    """Every radiogenomics analysis in a row (what the stage's rules run one by one); returns the
    summary (counts, chosen power, ...). TMB only with ``maf_path``, prognostic DEGs only with
    ``clinical_path``."""
    out_dir, figures_dir = Path(out_dir), Path(figures_dir)
    prepare_expression(counts_path, samples_path, scores_path, out_dir, params)
    run_deg(counts_path, samples_path, out_dir, figures_dir, params, threads=threads)
    run_wgcna_analysis(out_dir, figures_dir, features_path, selected_path, params, threads=threads)
    run_enrichment_analysis(out_dir, figures_dir, gene_set_paths, params, threads=threads)
    run_deconvolution(out_dir, figures_dir, signature_path, params, threads=threads)
    run_estimate(out_dir, figures_dir, estimate_gmt, params, threads=threads)
    if maf_path:
        run_tmb(out_dir, maf_path, samples_path, params, threads=threads)
    if clinical_path:
        run_prognostic(out_dir, figures_dir, clinical_path, params, threads=threads)
    return write_summary(out_dir / "normalisation.json", out_dir / "deg.tsv", out_dir / "intermediate/wgcna.json",
                         out_dir / "summary.json")
