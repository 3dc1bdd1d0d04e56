"""End to end on a small simulated study with planted DE genes, immune mixture and module."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

from radiogenomics.core.figure_writer import save_png_svg
from radiogenomics.genomics import enrichment, figures, pipeline


def simulate_study(root, n_patients=40, seed=0):
    rng = np.random.default_rng(seed)
    patients = [f"PT{i:03d}" for i in range(n_patients)]
    z = rng.normal(size=n_patients)
    module_factor = rng.normal(size=n_patients)
    genes = [f"GENE{i:03d}" for i in range(240)]
    log_mu = np.log(rng.lognormal(5, 0.8, size=(240, 1))) + np.zeros((1, n_patients))
    log_mu[:10] += 1.2 * z  # planted up with z
    log_mu[10:20] -= 1.2 * z  # planted down
    log_mu[80:140] += 0.8 * module_factor  # co-expression module
    # immune mixture: 4 cell types x 15 markers (genes 20..79); cell0 rises with z
    cells = [f"cell{c}" for c in range(4)]
    signature = rng.lognormal(1, 0.3, size=(60, 4))
    for c in range(4):
        signature[c * 15 : (c + 1) * 15, c] *= 40
    alpha = np.c_[np.exp(z), np.ones((n_patients, 3))] * 3
    fractions = np.array([rng.dirichlet(a) for a in alpha])
    log_mu[20:80] = np.log(800 * signature @ fractions.T)
    library = rng.uniform(0.7, 1.4, size=n_patients)
    mu = np.exp(log_mu) * library
    counts = rng.negative_binomial(10, 10 / (10 + mu))
    (root / "expression").mkdir(parents=True)
    pd.DataFrame(counts, index=pd.Index(genes, name="gene"), columns=[f"S{i:03d}" for i in range(n_patients)]) \
        .reset_index().to_csv(root / "expression/counts.tsv", sep="\t", index=False)
    pd.DataFrame({"sample_id": [f"S{i:03d}" for i in range(n_patients)], "patient_id": patients}) \
        .to_csv(root / "expression/samples.tsv", sep="\t", index=False)
    score = z + rng.normal(scale=0.3, size=n_patients)
    pd.DataFrame({"patient_id": patients, "cohort": "train", "score": score,
                  "group": np.where(score > np.median(score), "high", "low")}).to_csv(root / "scores.tsv", sep="\t", index=False)
    pd.DataFrame(signature, index=pd.Index(genes[20:80], name="gene"), columns=cells).reset_index() \
        .to_csv(root / "signature.tsv", sep="\t", index=False)
    sets = {"PLANTED_UP": genes[:10] + genes[150:153], "PLANTED_DOWN": genes[10:20]}
    for k in range(10):
        sets[f"RANDOM_{k}"] = [genes[i] for i in rng.choice(np.r_[20:240], size=15, replace=False)]
    paths = {}
    for library_name in ("go_bp", "kegg"):
        paths[library_name] = root / f"{library_name}.gmt"
        enrichment.write_gmt(sets, paths[library_name])
    enrichment.write_gmt({"STROMAL_SIGNATURE": genes[200:230], "IMMUNE_SIGNATURE": genes[20:35]}, root / "estimate.gmt")
    maf = pd.DataFrame({"Hugo_Symbol": rng.choice(["VHL", "PBRM1", "SETD2"], 60),
                        "Tumor_Sample_Barcode": rng.choice(patients, 60),
                        "Variant_Classification": rng.choice(["Missense_Mutation", "Silent"], 60)})
    maf.to_csv(root / "mutations.maf", sep="\t", index=False)
    pd.DataFrame({"patient_id": patients, "os_months": rng.exponential(40, n_patients) * np.exp(-0.8 * z),
                  "os_event": rng.integers(0, 2, n_patients)}).to_csv(root / "clinical.tsv", sep="\t", index=False)
    return paths, fractions, cells


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    paths, fractions, cells = simulate_study(root)
    summary = pipeline.run_genomics(
        root / "expression/counts.tsv", root / "expression/samples.tsv", root / "scores.tsv",
        root / "out", root / "figures", paths, root / "estimate.gmt", root / "signature.tsv",
        maf_path=root / "mutations.maf", clinical_path=root / "clinical.tsv",
        params={"enrichment": {"permutations": 50}, "deconvolution": {"permutations": 10},
                "wgcna": {"min_module_size": 20},
                "deg": {"abs_log2fc_min": 0.5, "shrink": False}})  # shrinkage is tested in test_genomics_deg
    return root, summary, fractions, cells


def test_outputs_written(study):
    root, summary, _, _ = study
    for name in ["deg.tsv", "enrichment.tsv", "wgcna_modules.tsv", "deconvolution.tsv", "estimate.tsv",
                 "tmb.tsv", "deg_tmb.tsv", "prognostic_degs.tsv", "normalisation.json", "wgcna_module_trait.tsv"]:
        assert (root / "out" / name).exists(), name
    for name in ["volcano", "deg_pca", "deg_heatmap", "enrichment_dotplot", "wgcna_soft_threshold",
                 "wgcna_module_trait", "deconvolution_bars", "deconvolution_boxplots", "estimate_boxplots",
                 "km_top_degs"]:
        assert (root / "figures" / f"genomics_{name}.png").exists(), name
        assert (root / "figures" / f"genomics_{name}.svg").exists(), name
    assert json.loads((root / "out/summary.json").read_text())["n_patients"] == 40


def test_planted_structure_recovered(study):
    root, _, fractions, cells = study
    degs = pd.read_csv(root / "out/deg.tsv", sep="\t")
    called = set(degs.loc[degs["direction"] != "ns", "gene"])
    planted = {f"GENE{i:03d}" for i in range(20)}
    cell0_markers = {f"GENE{i:03d}" for i in range(20, 35)}  # truly rise with z through the mixture
    assert len(called & (planted | cell0_markers)) / len(called) >= 0.9
    assert len(called & planted) / len(planted) >= 0.8
    enriched = pd.read_csv(root / "out/enrichment.tsv", sep="\t")
    ora_up = enriched[(enriched["method"] == "ora") & (enriched["direction"] == "up")]
    assert ora_up.sort_values("pvalue")["term"].iloc[0] == "PLANTED_UP"
    estimated = pd.read_csv(root / "out/deconvolution.tsv", sep="\t")
    for c, cell in enumerate(cells):
        assert pearsonr(estimated[cell], fractions[:, c])[0] >= 0.9, cell
    modules = pd.read_csv(root / "out/wgcna_modules.tsv", sep="\t").set_index("gene")["module"]
    planted_module = {f"GENE{i:03d}" for i in range(80, 140)}
    best = max(len(planted_module & set(modules.index[modules == m])) / len(planted_module | set(modules.index[modules == m]))
               for m in set(modules) - {"grey"})
    assert best >= 0.7


def test_figures_are_byte_identical_on_rerun(tmp_path):
    table = pd.DataFrame({"power": range(1, 6), "sft_r2": [0.1, 0.5, 0.8, 0.85, 0.9], "mean_k": [50, 20, 8, 4, 2]})
    first = save_png_svg(figures.soft_threshold_plot(table, 3), tmp_path / "a")
    second = save_png_svg(figures.soft_threshold_plot(table, 3), tmp_path / "b")
    for x, y in zip(first, second):
        assert x.read_bytes() == y.read_bytes()


def paired_fixture(n_patients=8, n_genes=120, seed=3):
    """Tumour + normal sample per patient (two tumour samples for the first two), a site column
    and genes 0-9 up in tumour; written as the stage's counts.tsv / samples.tsv."""
    rng = np.random.default_rng(seed)
    rows, columns = [], []
    base = rng.lognormal(5, 0.8, size=n_genes)
    for p in range(n_patients):
        patient_effect = rng.lognormal(0, 0.3, size=n_genes)
        kinds = ["normal", "tumour"] + (["tumour"] if p < 2 else [])
        for k, kind in enumerate(kinds):
            mu = base * patient_effect * np.where((np.arange(n_genes) < 10) & (kind == "tumour"), 4.0, 1.0)
            columns.append(rng.negative_binomial(20, 20 / (20 + mu)))
            rows.append({"sample_id": f"S{p}{k}", "patient_id": f"PT{p}", "sample_type": kind,
                         "site": "A" if p < 4 else "B"})
    counts = pd.DataFrame(np.array(columns).T, index=[f"GENE{i:03d}" for i in range(n_genes)],
                          columns=[r["sample_id"] for r in rows])
    return counts, pd.DataFrame(rows).set_index("sample_id")


def test_paired_design_uses_every_sample_of_patients_with_both_kinds():
    from radiogenomics.genomics import inputs

    counts, samples = paired_fixture()
    by_patient, chosen = inputs.one_sample_per_patient(counts, samples, "sample_type", "tumour")
    assert list(by_patient.columns) == [f"PT{p}" for p in range(8)] and (chosen["sample_type"] == "tumour").all()
    metadata = pd.DataFrame({"score": np.arange(8.0), "group": pd.Categorical(["low", "high"] * 4)},
                            index=by_patient.columns)
    options = {**pipeline.DEFAULTS["deg"], "shrink": False, "covariates": [],
               "paired": {"column": "sample_type", "test": "tumour", "reference": "normal"}}
    degs = pipeline.differential_expression(counts, samples, by_patient, metadata, chosen, options, "high", "low")
    up = set(degs.loc[degs["direction"] == "up", "gene"])
    assert up == {f"GENE{i:03d}" for i in range(10)}
    # patients without a normal sample drop out of the paired test
    pair_counts, pair_samples = inputs.paired_samples(counts, samples.drop(index="S30"), "sample_type", "tumour",
                                                      "normal", metadata.index)
    assert "PT3" not in set(pair_samples["patient_id"]) and pair_counts.shape[1] == 18 - 2


def test_covariates_enter_the_unpaired_design_and_missing_columns_are_named(tmp_path):
    from radiogenomics.core.cases import BadCase
    from radiogenomics.genomics import inputs

    counts, samples = paired_fixture()
    by_patient, chosen = inputs.one_sample_per_patient(counts, samples, "sample_type", "tumour")
    metadata = pd.DataFrame({"score": np.arange(8.0), "group": pd.Categorical(["low", "high"] * 4)},
                            index=by_patient.columns)
    options = {**pipeline.DEFAULTS["deg"], "shrink": False, "covariates": ["site"]}
    with_site = pipeline.differential_expression(counts, samples, by_patient, metadata, chosen, options, "high", "low")
    without = pipeline.differential_expression(counts, samples, by_patient, metadata, chosen,
                                               {**options, "covariates": []}, "high", "low")
    assert not np.allclose(with_site.set_index("gene")["lfcSE"], without.set_index("gene").loc[
        with_site["gene"], "lfcSE"])
    with pytest.raises(BadCase, match="batch"):
        inputs.require_sample_columns(samples, ["site", "batch"], tmp_path / "samples.tsv")
