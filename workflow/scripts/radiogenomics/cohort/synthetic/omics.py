"""Synthetic RNA-seq counts, immune mixture, co-expression modules, gene sets and mutations.

One sample per patient (``S-<patient_id>``). Structure planted on the latent aggressiveness z:
a co-expression module M1 driven by z (+ small noise) whose members include the planted up
genes (log2 mean + b_g per unit of the module factor), down genes whose log2 mean falls by b_g per
unit z, each with its own regulation noise (differentially expressed, not one co-expressed
block: a second z-module would be an ambiguous truth for WGCNA), Dirichlet immune fractions whose
CD8_T and Treg concentrations rise with z, a stromal program (for ESTIMATE), and BAP1 mutations
that are more likely at high z.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core.io import write_text, write_tsv

CELL_TYPES = ("CD8_T", "CD4_T", "Treg", "B_cell", "Macrophage_M2", "NK")
Z_TIED_CELL_TYPES = {"CD8_T": 0.6, "Treg": 0.6}  # log-concentration per unit z
BASE_CONCENTRATION = {"CD8_T": 3.0, "CD4_T": 4.0, "Treg": 1.5, "B_cell": 2.0,
                      "Macrophage_M2": 4.0, "NK": 1.5}  # fmt: skip
MARKERS_PER_CELL_TYPE = 20
N_MODULES = 4
MODULE_SIZE_RANGE = (110, 160)
Z_MODULE = "M1"
Z_MODULE_NOISE_SD = 0.3
N_STROMAL_GENES = 60
DE_EFFECT_RANGE = (1.0, 1.6)
DOWN_GENE_NOISE_SD = 1.5  # log2 SD of each down gene's own per-sample regulation
DISPERSION_RANGE = (0.1, 0.3)
LIBRARY_SIZE_RANGE = (0.7, 1.3)
GENE_SET_LIBRARIES = ("go_bp", "go_cc", "go_mf", "kegg", "hallmark")
DRIVER_GENES = {"VHL": ("3", 0.55), "PBRM1": ("3", 0.40), "SETD2": ("3", 0.12),
                "KDM5C": ("X", 0.07)}  # fmt: skip
VARIANT_CLASSES = {
    "Missense_Mutation": ("SNP", 0.55),
    "Silent": ("SNP", 0.2),
    "Nonsense_Mutation": ("SNP", 0.1),
    "Splice_Site": ("SNP", 0.05),
    "Frame_Shift_Del": ("DEL", 0.06),
    "Frame_Shift_Ins": ("INS", 0.04),
}

STREAM_GENES = 10
STREAM_SAMPLE = 11
STREAM_GENE_SETS = 12
STREAM_MUTATIONS = 13
STREAM_DOWN_NOISE = 14


def _patient_number(patient_id: str) -> int:
    return int(str(patient_id)[3:])


def _gene_catalogue(params: dict, rng: np.random.Generator) -> dict:
    n_up, n_down = int(params["n_de_up"]), int(params["n_de_down"])
    catalogue = {
        "background": [f"GENE{i:04d}" for i in range(1, int(params["n_genes"]) + 1)],
        "up": [f"UP_Z{i:03d}" for i in range(1, n_up + 1)],
        "down": [f"DOWN_Z{i:03d}" for i in range(1, n_down + 1)],
        "immune": [
            f"IMM_{cell}_{i:02d}"
            for cell in CELL_TYPES
            for i in range(1, MARKERS_PER_CELL_TYPE + 1)
        ],
        "stromal": [f"STROMA_{i:02d}" for i in range(1, N_STROMAL_GENES + 1)],
    }
    sizes = rng.integers(MODULE_SIZE_RANGE[0], MODULE_SIZE_RANGE[1] + 1, N_MODULES)
    catalogue["modules"] = {
        f"M{m + 1}": [f"MOD{m + 1}_{i:03d}" for i in range(1, sizes[m] + 1)]
        for m in range(N_MODULES)
    }
    return catalogue


def immune_signature(rng: np.random.Generator, markers: list[str]) -> pd.DataFrame:
    """Marker genes x cell types: each type's own markers high (2^9..2^11.5), others low."""
    n_types = len(CELL_TYPES)
    owner = np.repeat(np.arange(n_types), MARKERS_PER_CELL_TYPE)
    values = 2.0 ** rng.uniform(2.0, 5.0, (len(markers), n_types))
    values[np.arange(len(markers)), owner] = 2.0 ** rng.uniform(9.0, 11.5, len(markers))
    return pd.DataFrame(values, index=pd.Index(markers, name="gene"), columns=list(CELL_TYPES))


def simulate_omics(params: dict, truth: pd.DataFrame) -> dict:
    """Counts, samples, signature, gene sets, MAF and the omics truth tables for ``truth``'s patients."""
    seed = int(params["seed"])
    gene_rng = np.random.default_rng([seed, STREAM_GENES])
    catalogue = _gene_catalogue(params, gene_rng)
    module_genes = [g for genes in catalogue["modules"].values() for g in genes]
    linear_genes = (
        catalogue["background"] + catalogue["up"] + catalogue["down"] + module_genes
        + catalogue["stromal"]
    )  # fmt: skip
    genes = linear_genes + catalogue["immune"]
    base = np.clip(gene_rng.normal(7.0, 1.8, len(linear_genes)), 3.0, 13.0)
    dispersion = gene_rng.uniform(*DISPERSION_RANGE, len(genes))
    index = {g: i for i, g in enumerate(linear_genes)}

    z_effect = np.zeros(len(linear_genes))
    module_loading = np.zeros((N_MODULES, len(linear_genes)))
    de_rows, module_rows = [], []
    for direction, sign in (("up", 1.0), ("down", -1.0)):
        effects = sign * gene_rng.uniform(*DE_EFFECT_RANGE, len(catalogue[direction]))
        for gene, b in zip(catalogue[direction], effects, strict=True):
            if direction == "up":  # up genes are z-module members with a strong loading
                module_loading[0, index[gene]] = b
                module_rows.append((gene, Z_MODULE, 1, b))
            else:
                z_effect[index[gene]] = b
            de_rows.append((gene, direction, b, "planted_de"))
    down = np.array([index[g] for g in catalogue["down"]], dtype=int)
    for m, (module, members) in enumerate(catalogue["modules"].items()):
        loadings = gene_rng.uniform(0.5, 1.0, len(members))
        for gene, loading in zip(members, loadings, strict=True):
            module_loading[m, index[gene]] = loading
            module_rows.append((gene, module, int(module == Z_MODULE), loading))
            if module == Z_MODULE:
                de_rows.append((gene, "up", loading, "z_module"))
    stromal_loading = np.zeros(len(linear_genes))
    stromal_loading[[index[g] for g in catalogue["stromal"]]] = gene_rng.uniform(
        0.7, 1.1, N_STROMAL_GENES
    )
    signature = immune_signature(gene_rng, catalogue["immune"])
    immune_background = 2.0 ** gene_rng.uniform(3.0, 5.0, len(catalogue["immune"]))

    counts = np.zeros((len(genes), len(truth)), np.int64)
    patient_rows, fraction_rows = [], []
    concentration_base = np.array([BASE_CONCENTRATION[c] for c in CELL_TYPES])
    z_slope = np.array([Z_TIED_CELL_TYPES.get(c, 0.0) for c in CELL_TYPES])
    for j, (patient_id, z) in enumerate(zip(truth["patient_id"], truth["z"], strict=True)):
        rng = np.random.default_rng([seed, STREAM_SAMPLE, _patient_number(patient_id)])
        factors = rng.normal(size=N_MODULES)
        factors[0] = z + Z_MODULE_NOISE_SD * rng.normal()
        stromal_level = rng.normal()
        infiltration = rng.uniform(0.3, 1.0)
        fractions = rng.dirichlet(concentration_base * np.exp(z_slope * z))
        library = rng.uniform(*LIBRARY_SIZE_RANGE)
        log2_mean = base + z_effect * z + factors @ module_loading + stromal_loading * stromal_level
        down_rng = np.random.default_rng([seed, STREAM_DOWN_NOISE, _patient_number(patient_id)])
        log2_mean[down] += DOWN_GENE_NOISE_SD * down_rng.standard_normal(len(down))
        immune_mean = immune_background + infiltration * (signature.to_numpy() @ fractions)
        mean = library * np.concatenate([2.0**log2_mean, immune_mean])
        size = 1.0 / dispersion
        counts[:, j] = rng.negative_binomial(size, size / (size + mean))
        patient_rows.append(
            {
                "patient_id": patient_id,
                "sample_id": f"S-{patient_id}",
                "library_size": library,
                "infiltration": infiltration,
                "stromal_level": stromal_level,
                **{f"module_{m + 1}_factor": factors[m] for m in range(N_MODULES)},
            }
        )
        fraction_rows.append({"patient_id": patient_id, **dict(zip(CELL_TYPES, fractions))})

    samples = [f"S-{p}" for p in truth["patient_id"]]
    counts_table = pd.DataFrame(counts, columns=samples)
    counts_table.insert(0, "gene", genes)
    gene_sets, planted_sets = _gene_sets(seed, catalogue, genes)
    maf, mutation_truth = _mutations(seed, truth, catalogue["background"])
    patient_truth = pd.DataFrame(patient_rows).merge(mutation_truth, on="patient_id")
    return {
        "counts": counts_table,
        "samples": pd.DataFrame({"sample_id": samples, "patient_id": truth["patient_id"]}),
        "signature": signature.reset_index(),
        "gene_sets": gene_sets,
        "planted_gene_sets": planted_sets,
        "maf": maf,
        "patient_truth": patient_truth,
        "cell_fractions": pd.DataFrame(fraction_rows),
        "de_genes": pd.DataFrame(de_rows, columns=["gene", "direction", "log2fc_per_z", "kind"]),
        "modules": pd.DataFrame(module_rows, columns=["gene", "module", "z_module", "loading"]),
    }


def _gene_sets(seed: int, catalogue: dict, genes: list[str]):
    """GMT libraries: random decoys (15-200 genes) plus planted sets built from planted genes."""
    rng = np.random.default_rng([seed, STREAM_GENE_SETS])
    background = np.array(catalogue["background"])

    def planted(core, n_core, n_noise):
        chosen = list(rng.choice(core, size=min(n_core, len(core)), replace=False))
        return sorted(chosen + list(rng.choice(background, size=n_noise, replace=False)))

    planted_sets = {
        "kegg": {"KEGG_SYN_HYPOXIA_UP": planted(catalogue["up"], 30, 8)},
        "go_bp": {
            "GO_SYN_CELL_CYCLE_DOWN": planted(catalogue["down"], 30, 8),
            "GO_SYN_IMMUNE_RESPONSE": planted(catalogue["immune"], 60, 5),
        },
        "go_cc": {"GO_SYN_EXTRACELLULAR_MATRIX": planted(catalogue["stromal"], 45, 5)},
        "go_mf": {"GO_SYN_MODULE2_BINDING": planted(catalogue["modules"]["M2"], 80, 5)},
        "hallmark": {
            "HALLMARK_SYN_Z_MODULE": sorted(catalogue["modules"][Z_MODULE]),
            "HALLMARK_SYN_HYPOXIA": planted(catalogue["up"], 25, 10),
        },
    }
    libraries, planted_rows = {}, []
    all_genes = np.array(genes)
    for library in GENE_SET_LIBRARIES:
        sets = dict(planted_sets[library])
        for name, members in sets.items():
            planted_rows.append({"library": library, "gene_set": name, "n_genes": len(members)})
        prefix = library.upper() + "_DECOY"
        for i in range(int(rng.integers(30, 61)) - len(sets)):
            size = int(rng.integers(15, 201))
            sets[f"{prefix}_{i + 1:03d}"] = sorted(rng.choice(all_genes, size, replace=False))
        libraries[library] = sets
    libraries["estimate"] = {
        "STROMAL_SIGNATURE": list(catalogue["stromal"]),
        "IMMUNE_SIGNATURE": list(catalogue["immune"]),
    }
    return libraries, pd.DataFrame(planted_rows)


def _mutations(seed: int, truth: pd.DataFrame, passenger_pool: list[str]):
    """MAF rows: ccRCC drivers (BAP1 rising with z) + a varying number of passengers (TMB)."""
    gene_rng = np.random.default_rng([seed, STREAM_MUTATIONS])
    chromosomes = [str(c) for c in range(1, 23)] + ["X"]
    passenger_chrom = dict(
        zip(passenger_pool, gene_rng.choice(chromosomes, len(passenger_pool)), strict=True)
    )
    classes = list(VARIANT_CLASSES)
    class_p = np.array([VARIANT_CLASSES[c][1] for c in classes])
    rows, truth_rows = [], []
    for patient_id, z in zip(truth["patient_id"], truth["z"], strict=True):
        rng = np.random.default_rng([seed, STREAM_MUTATIONS, _patient_number(patient_id)])
        mutated = [(gene, chrom) for gene, (chrom, p) in DRIVER_GENES.items() if rng.uniform() < p]
        bap1 = rng.uniform() < 1.0 / (1.0 + np.exp(-(-2.6 + 1.2 * z)))
        if bap1:
            mutated.append(("BAP1", "3"))
        n_passengers = int(rng.poisson(np.exp(3.0 + 0.25 * z + 0.5 * rng.normal())))
        for gene in rng.choice(passenger_pool, n_passengers, replace=True):
            mutated.append((str(gene), passenger_chrom[str(gene)]))
        for gene, chrom in mutated:
            variant = classes[rng.choice(len(classes), p=class_p)]
            rows.append(
                {
                    "Hugo_Symbol": gene,
                    "Tumor_Sample_Barcode": f"S-{patient_id}",
                    "Variant_Classification": variant,
                    "Variant_Type": VARIANT_CLASSES[variant][0],
                    "Chromosome": chrom,
                    "Start_Position": int(rng.integers(1_000_000, 150_000_000)),
                }
            )
        truth_rows.append(
            {"patient_id": patient_id, "bap1_mutated": int(bap1), "n_mutations": len(mutated)}
        )
    return pd.DataFrame(rows), pd.DataFrame(truth_rows)


def gmt_text(sets: dict[str, list[str]]) -> str:
    return "".join(f"{name}\tsynthetic\t" + "\t".join(genes) + "\n" for name, genes in sets.items())


def write_omics(omics: dict, raw_dir) -> None:
    raw_dir = Path(raw_dir)
    write_tsv(omics["counts"], raw_dir / "expression" / "counts.tsv")
    write_tsv(omics["samples"], raw_dir / "expression" / "samples.tsv")
    write_tsv(omics["signature"], raw_dir / "signatures" / "immune_signature.tsv")
    for library, sets in omics["gene_sets"].items():
        write_text(gmt_text(sets), raw_dir / "genesets" / f"{library}.gmt")
    write_tsv(omics["maf"], raw_dir / "mutations.maf")
