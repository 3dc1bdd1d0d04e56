"""Time the genomics stage on TCGA-KIRC-sized synthetic input (default 20,000 genes x 500
samples; WGCNA on the 5,000 most variable genes). Prints one JSON object: seconds per step,
plus the speed ratio of our vectorised ssGSEA to gseapy.ssgsea on the same input (one run).
With ``--blas-ratio`` only DESeq2 runs, twice on the same input: BLAS bounded to one thread
(what the workflow does, threadpoolctl) and BLAS left to its own thread count; it prints both
times, their ratio and whether the results are identical. With ``--algorithm-ratio`` only the
DESeq2 fit and Wald test run (no shrinkage), once with DESeq2's algorithms (the default,
radiogenomics.genomics.deseq2) and once with PyDESeq2's own; it prints both times and their ratio.

    .venv/bin/python benchmarks/genomics_stage.py [--genes 20000] [--samples 500] [--blas-ratio | --algorithm-ratio]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import gseapy
import numpy as np
import pandas as pd
import threadpoolctl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from radiogenomics.genomics import deconvolution, deg, enrichment, estimate, inputs, wgcna  # noqa: E402


def simulate(n_genes: int, n_samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n_samples)
    genes = [f"G{i:05d}" for i in range(n_genes)]
    log_mu = rng.normal(6.0, 1.8, size=(n_genes, 1)) + np.zeros((1, n_samples))
    log_mu[:200] += 0.8 * z
    log_mu[200:400] -= 0.8 * z
    for m in range(min(10, (n_genes - 1000) // 150)):  # up to ten co-expression modules of 150 genes
        log_mu[1000 + 150 * m : 1150 + 150 * m] += 0.7 * rng.normal(size=n_samples)
    signature_values = rng.lognormal(2, 0.5, size=(300, 10))
    for c in range(10):  # 30 marker genes per cell type, as in LM22-like matrices
        signature_values[30 * c : 30 * (c + 1), c] *= 30
    fractions = rng.dirichlet(np.ones(10), size=n_samples)
    log_mu[-300:] = np.log(20 * signature_values @ fractions.T)
    mu = np.exp(np.clip(log_mu, -2, 14)) * rng.uniform(0.7, 1.3, size=n_samples)
    counts = pd.DataFrame(rng.negative_binomial(5, 5 / (5 + mu)), index=genes,
                          columns=[f"P{j:04d}" for j in range(n_samples)])
    groups = pd.Series(np.where(z > np.median(z), "high", "low"), index=counts.columns)
    signature = pd.DataFrame(signature_values, index=genes[-300:],
                             columns=[f"cell{c}" for c in range(10)])
    sets = {f"SET{k:04d}": list(rng.choice(genes, size=int(rng.integers(15, 300)), replace=False))
            for k in range(1000)}
    return counts, groups, signature, sets


def threadpool_info_threads() -> int:
    """Threads the BLAS libraries would use unbounded."""
    return max((pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"),
               default=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--wgcna-genes", type=int, default=5000)
    parser.add_argument("--gsea-permutations", type=int, default=1000)
    parser.add_argument("--deconvolution-permutations", type=int, default=100)
    parser.add_argument("--no-shrink", action="store_true", help="skip apeGLM log-fold-change shrinkage")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS thread bound of the whole stage, as the workflow's rule threads")
    parser.add_argument("--blas-ratio", action="store_true",
                        help="only DESeq2, BLAS bounded to 1 thread vs unbounded, in one run")
    parser.add_argument("--algorithm-ratio", action="store_true",
                        help="only the DESeq2 fit, DESeq2's algorithms vs PyDESeq2's own, in one run")
    args = parser.parse_args()

    timings = {}

    def timed(name, fn, *a, **k):
        start = time.perf_counter()
        value = fn(*a, **k)
        timings[name] = round(time.perf_counter() - start, 2)
        print(f"{name}: {timings[name]} s", file=sys.stderr, flush=True)
        return value

    counts, groups, signature, sets = timed("simulate", simulate, args.genes, args.samples)
    counts = timed("filter", inputs.filter_expressed, counts)
    design = groups.to_frame("group")
    if args.blas_ratio:
        bounded = timed("deseq2_blas_1_thread", deg.differential_expression, counts, design,
                        shrink=not args.no_shrink, threads=1)
        unbounded = timed("deseq2_blas_unbounded", deg.differential_expression, counts, design,
                          shrink=not args.no_shrink, threads=None)
        print(json.dumps({"genes": args.genes, "samples": args.samples, "genes_after_filter": int(counts.shape[0]),
                          "blas_threads_available": threadpool_info_threads(), **timings,
                          "unbounded_over_bounded": round(timings["deseq2_blas_unbounded"]
                                                          / timings["deseq2_blas_1_thread"], 2),
                          "identical_results": bool(bounded.equals(unbounded))}, indent=1))
        return
    if args.algorithm_ratio:
        metadata = deg.design_metadata(design, "group", "high", "low")
        tables = {}
        for algorithm in deg.ALGORITHMS:
            def fit_and_test(algorithm=algorithm):
                dds = deg.fit_deseq2(counts, metadata, algorithm=algorithm)
                return deg.deseq2_table(dds, "group", "high", "low", shrink=False)
            tables[algorithm] = timed(f"deseq2_fit_{algorithm}", fit_and_test)
        ours, theirs = tables["deseq2"]["stat"], tables["pydeseq2"]["stat"]
        print(json.dumps({"genes": args.genes, "samples": args.samples, "genes_after_filter": int(counts.shape[0]),
                          **timings, "pydeseq2_over_deseq2": round(timings["deseq2_fit_pydeseq2"]
                                                                   / timings["deseq2_fit_deseq2"], 2),
                          "stat_within_2pct_of_each_other": round(float(
                              ((ours - theirs).abs() <= 0.02 * theirs.abs()).mean()), 4)}, indent=1))
        return
    threadpoolctl.threadpool_limits(limits=args.blas_threads, user_api="blas")  # stays for the run
    log_expression, _ = timed("normalise", inputs.normalise, counts)
    timed("wgcna", wgcna.run_wgcna, log_expression.T, top_variable_genes=args.wgcna_genes, min_module_size=100)
    linear = counts / inputs.size_factors(counts)
    timed("deconvolution", deconvolution.deconvolve, linear, signature,
          permutations=args.deconvolution_permutations)
    estimate_sets = {"STROMAL_SIGNATURE": list(counts.index[:141]), "IMMUNE_SIGNATURE": list(counts.index[141:282])}
    timed("estimate_ssgsea_ours", estimate.estimate_scores, log_expression, estimate_sets)
    timed("estimate_ssgsea_gseapy", gseapy.ssgsea, log_expression, estimate_sets, sample_norm_method="rank",
          weight=0.25, min_size=1, max_size=100000, threads=1, outdir=None)
    degs = timed("deseq2", deg.differential_expression, counts, design, shrink=not args.no_shrink)
    with tempfile.TemporaryDirectory() as tmp:
        gmt = Path(tmp) / "sets.gmt"
        enrichment.write_gmt(sets, gmt)
        timed("enrichment_ora_gsea", enrichment.run_enrichment, degs, {"sets": gmt},
              permutations=args.gsea_permutations)
    timings["ssgsea_speedup_vs_gseapy"] = round(timings["estimate_ssgsea_gseapy"] / max(timings["estimate_ssgsea_ours"], 1e-9), 1)
    timings["total_stage_s"] = round(sum(v for k, v in timings.items()
                                         if k not in ("simulate", "estimate_ssgsea_gseapy", "ssgsea_speedup_vs_gseapy")), 1)
    print(json.dumps({"genes": args.genes, "samples": args.samples, "genes_after_filter": int(counts.shape[0]),
                      **timings}, indent=1))


if __name__ == "__main__":
    main()
