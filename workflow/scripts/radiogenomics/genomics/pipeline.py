"""The genomics stage end to end: one call writes every table and figure of studies S1/S2/S5.

Tables go to ``out_dir`` (deg.tsv, enrichment.tsv, wgcna_modules.tsv, deconvolution.tsv,
estimate.tsv and their companions), figures to ``figures_dir`` as ``genomics_*.{png,svg}``.
Parameters come from the config block ``genomics`` (see :data:`DEFAULTS`).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from radiogenomics.genomics import compare, deconvolution, deg, enrichment, estimate, figures, inputs, tmb, wgcna
from radiogenomics.figures import save_png_svg
from radiogenomics.io import read_tsv, write_json, write_tsv

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


def merged_params(params: dict | None) -> dict:
    """Config values over :data:`DEFAULTS`, one level of nesting deep."""
    result = copy.deepcopy(DEFAULTS)
    for key, value in (params or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key].update(value)
        else:
            result[key] = value
    return result


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


def run_genomics(*args, threads: int = 1, **kwargs) -> dict:
    """Run every radiogenomics analysis (:func:`_run_genomics`) with BLAS bounded to ``threads``
    (the rule's ``threads``, threadpoolctl): OpenBLAS threads left free oversubscribe the cores
    inside PyDESeq2's per-gene loops and WGCNA's per-module eigengenes, which then run many times
    slower (benchmarks/genomics_stage.py --blas-ratio)."""
    with threadpool_limits(limits=threads, user_api="blas"):
        return _run_genomics(*args, threads=threads, **kwargs)


def _run_genomics(counts_path, samples_path, scores_path, out_dir, figures_dir, gene_set_paths: dict,
                  estimate_gmt, signature_path, maf_path=None, clinical_path=None, features_path=None,
                  selected_path=None, params: dict | None = None, threads: int = 1) -> dict:
    """Every radiogenomics analysis; returns a small summary (counts, chosen power, ...)."""
    p = merged_params(params)
    out_dir, figures_dir = Path(out_dir), Path(figures_dir)
    high, low = p["group_high"], p["group_low"]

    sample_counts, samples = inputs.load_sample_counts(counts_path, samples_path)
    paired = p["deg"]["paired"]
    inputs.require_sample_columns(samples, list(p["deg"]["covariates"]) + ([paired["column"]] if paired else []),
                                  samples_path)
    counts, patient_samples = inputs.one_sample_per_patient(
        sample_counts, samples, *((paired["column"], paired["test"]) if paired else ()))
    counts, metadata = inputs.join_scores(counts, read_tsv(scores_path, dtype={"patient_id": str}),
                                          high=high, low=low, cohorts=p["cohorts"])
    counts = inputs.filter_expressed(counts, p["min_count"], p["min_fraction"])
    log_expression, record = inputs.normalise(counts, log2=True)
    linear_expression = counts / inputs.size_factors(counts)
    write_json(record, out_dir / "normalisation.json")
    log.info("expression: %d genes x %d patients", *counts.shape)

    degs = differential_expression(sample_counts, samples, counts, metadata, patient_samples, p["deg"], high, low,
                                   threads)
    write_tsv(degs, out_dir / "deg.tsv")
    significant = degs[degs["direction"] != "ns"]
    save_png_svg(figures.volcano(degs, p["deg"]["padj_max"], p["deg"]["abs_log2fc_min"]),
                         figures_dir / "genomics_volcano")
    save_png_svg(figures.pca_on_degs(log_expression, significant["gene"].tolist(), metadata["group"]),
                         figures_dir / "genomics_deg_pca")
    save_png_svg(figures.top_deg_heatmap(log_expression, degs, metadata["group"]),
                         figures_dir / "genomics_deg_heatmap")

    e = p["enrichment"]
    enriched = enrichment.run_enrichment(degs, gene_set_paths, permutations=e["permutations"], seed=p["seed"],
                                         min_size=e["min_size"], max_size=e["max_size"], gsea=e["gsea"])

    w = p["wgcna"]
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
    save_png_svg(figures.soft_threshold_plot(network.soft_power_table, network.power, w["r2_threshold"]),
                         figures_dir / "genomics_wgcna_soft_threshold")
    module_trait = pd.DataFrame(columns=["module", "trait", "r", "pvalue"])
    if not network.eigengenes.empty:
        module_trait = wgcna.module_trait_correlation(network.eigengenes, traits)
        save_png_svg(figures.module_trait_heatmap(module_trait), figures_dir / "genomics_wgcna_module_trait")
    write_tsv(module_trait, out_dir / "wgcna_module_trait.tsv")

    # enrichment of the modules most correlated with the score (S2), universe = WGCNA genes
    score_rows = module_trait[module_trait["trait"] == "score"]
    top_modules = score_rows.reindex(score_rows["r"].abs().sort_values(ascending=False, kind="mergesort").index)
    module_parts = []
    for module in top_modules["module"].head(e["top_modules"]):
        members = network.modules.loc[network.modules["module"] == module, "gene"].tolist()
        for library, path in gene_set_paths.items():
            part = enrichment.over_representation(members, enrichment.read_gmt(path), network.modules["gene"].tolist(),
                                                  library, module, e["min_size"], e["max_size"])
            part["method"] = "ora_wgcna_module"
            module_parts.append(part)
    enriched = pd.concat([enriched, *[m for m in module_parts if not m.empty]], ignore_index=True)
    write_tsv(enriched, out_dir / "enrichment.tsv")
    save_png_svg(figures.enrichment_dotplot(enriched), figures_dir / "genomics_enrichment_dotplot")

    signature = read_tsv(signature_path).set_index("gene")
    fractions = deconvolution.deconvolve(linear_expression, signature, permutations=p["deconvolution"]["permutations"],
                                         seed=p["seed"], svr_tolerance=p["deconvolution"]["svr_tolerance"]).rename(columns={"sample": "patient_id"})
    write_tsv(fractions, out_dir / "deconvolution.tsv")
    cell_fractions = fractions.set_index("patient_id")[list(signature.columns)]
    cell_tests = compare.compare_groups(cell_fractions, metadata["group"], high, low)
    write_tsv(cell_tests, out_dir / "deconvolution_tests.tsv")
    save_png_svg(figures.stacked_fractions(cell_fractions, metadata["group"]),
                         figures_dir / "genomics_deconvolution_bars")
    save_png_svg(figures.group_boxplots(cell_fractions, metadata["group"], cell_tests, "Immune cell fractions"),
                         figures_dir / "genomics_deconvolution_boxplots")

    scores = estimate.estimate_scores(log_expression, enrichment.read_gmt(estimate_gmt)).rename(
        columns={"sample": "patient_id"})
    write_tsv(scores, out_dir / "estimate.tsv")
    estimate_values = scores.set_index("patient_id")
    estimate_tests = compare.compare_groups(estimate_values, metadata["group"], high, low)
    write_tsv(estimate_tests, out_dir / "estimate_tests.tsv")
    save_png_svg(figures.group_boxplots(estimate_values[["stromal_score", "immune_score", "estimate_score"]],
                                                metadata["group"], estimate_tests, "ESTIMATE"),
                         figures_dir / "genomics_estimate_boxplots")

    summary = {"n_genes": int(counts.shape[0]), "n_patients": int(counts.shape[1]),
               "n_up": int((degs["direction"] == "up").sum()), "n_down": int((degs["direction"] == "down").sum()),
               "wgcna_power": network.power,
               "wgcna_modules": int(network.modules.loc[network.modules["module"] != wgcna.GREY, "module"].nunique())}
    top_genes = significant["gene"].head(max(p["tmb"]["top_degs"], p["survival"]["top_degs"])).tolist()
    if maf_path:
        maf = tmb.read_maf(maf_path)
        sample_map = dict(read_tsv(samples_path, dtype=str)[["sample_id", "patient_id"]].itertuples(index=False))
        burden = tmb.tumour_mutation_burden(maf, list(counts.columns), p["tmb"]["exome_mb"], sample_map)
        write_tsv(burden, out_dir / "tmb.tsv")
        status = tmb.mutation_status(maf, list(counts.columns), sample_map=sample_map)
        write_tsv(status.reset_index(), out_dir / "mutation_status.tsv")
        write_tsv(tmb.deg_tmb_correlation(log_expression, burden, top_genes[: p["tmb"]["top_degs"]]),
                  out_dir / "deg_tmb.tsv")
    if clinical_path and top_genes:
        s = p["survival"]
        survival = read_tsv(clinical_path, dtype={"patient_id": str}).set_index("patient_id")
        survival = survival.dropna(subset=[s["time"], s["event"]])
        km_genes = top_genes[: s["top_degs"]]
        write_tsv(compare.median_split_survival(log_expression, survival, km_genes, s["time"], s["event"]),
                  out_dir / "prognostic_degs.tsv")
        save_png_svg(figures.km_top_genes(log_expression, survival, km_genes, s["time"], s["event"]),
                             figures_dir / "genomics_km_top_degs")
    write_json(summary, out_dir / "summary.json")
    return summary
