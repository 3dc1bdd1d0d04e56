import hashlib

import numpy as np
import pandas as pd
import pytest
from fake_servers import GENES, fake_cohort, fast_policy, star_counts_file  # noqa: F401

from radiogenomics.public.gdc import (
    DAYS_PER_MONTH,
    GdcClient,
    build_counts_matrix,
    gdc_filters,
    harmonise_clinical,
    merge_mafs,
)


def client(server, **kwargs):
    return GdcClient(f"{server.url}/gdc", policy=fast_policy(), **kwargs)


def test_filters_have_the_gdc_shape():
    assert gdc_filters(cases__project__project_id="TCGA-KIRC", data_type=["A", "B"]) == {
        "op": "and",
        "content": [
            {"op": "in", "content": {"field": "cases.project.project_id", "value": ["TCGA-KIRC"]}},
            {"op": "in", "content": {"field": "data_type", "value": ["A", "B"]}},
        ],
    }


def test_queries_page_through_all_hits_under_faults(fake_cohort):
    server, state = fake_cohort
    state.inject("gdc_files", "500", "timeout", "truncate")
    files = client(server, page_size=2).find_star_counts("TCGA-KIRC")
    assert len(files) == 3 and files["sample_id"].tolist() == [
        "TCGA-B0-5094-01A",
        "TCGA-B0-5095-01A",
        "TCGA-CJ-4642-01A",
    ]
    assert state.count("gdc_files") == 2 + 3  # two pages, plus the three failed tries
    assert files["md5sum"].tolist() == [
        hashlib.md5(f.content).hexdigest() for f in state.gdc_files if "star" in f.file_name
    ]
    mafs = client(server).find_masked_mafs("TCGA-KIRC")
    assert len(mafs) == 3 and all(mafs["file_name"].str.endswith(".maf.gz"))
    assert client(server).find_star_counts("TCGA-KIRP").empty


@pytest.mark.parametrize("bundle_fault", ["bad_md5", "truncate", "500"])
def test_batched_download_falls_back_to_single_files(fake_cohort, tmp_path, bundle_fault):
    server, state = fake_cohort
    gdc = client(server)
    files = gdc.find_star_counts("TCGA-KIRC")
    state.inject("gdc_bundle", *[bundle_fault] * 4)
    state.inject("gdc_data", "truncate")
    results, failures = gdc.download_files(files, tmp_path, batch_size=3)
    assert len(results) == 3 and failures == {}
    # However a file arrived, its record names its own URL.
    assert sorted(r.url for r in results) == sorted(gdc.data_url(f) for f in files["file_id"])
    for row in files.itertuples():
        path = tmp_path / row.file_id / row.file_name
        assert hashlib.md5(path.read_bytes()).hexdigest() == row.md5sum
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_batched_download_uses_one_bundle_and_skips_on_rerun(fake_cohort, tmp_path):
    server, state = fake_cohort
    gdc = client(server)
    files = gdc.find_masked_mafs("TCGA-KIRC")
    gdc.download_files(files, tmp_path, batch_size=10)
    assert state.count("gdc_bundle") == 1 and state.count("gdc_data") == 0
    again, _ = gdc.download_files(files, tmp_path, batch_size=10)
    assert state.count("gdc_bundle") == 1 and not any(r.fetched for r in again)


def test_counts_matrix_takes_unstranded_counts_and_skips_summary_rows(tmp_path):
    paths = {}
    for sample, counts in {"S2": [1, 2, 3, 4, 5, 6], "S1": [10, 0, 30, 7, 1, 9]}.items():
        paths[sample] = tmp_path / f"{sample}.tsv"
        paths[sample].write_bytes(star_counts_file(counts))
    by_name, genes = build_counts_matrix(paths)
    # Hand calculation: CD99 = its gene plus its PAR_Y copy; rows sorted by symbol.
    assert by_name.columns.tolist() == ["gene", "S1", "S2"]
    assert by_name.set_index("gene").to_dict("index") == {
        "CD99": {"S1": 8, "S2": 9},
        "DPM1": {"S1": 30, "S2": 3},
        "TNMD": {"S1": 0, "S2": 2},
        "TSPAN6": {"S1": 10, "S2": 1},
        "VHL": {"S1": 9, "S2": 6},
    }
    assert genes["gene_id"].tolist() == [g[0] for g in GENES]
    by_id, _ = build_counts_matrix(paths, gene_key="gene_id")
    assert len(by_id) == len(GENES) and not by_id["gene"].str.startswith("N_").any()
    other = tmp_path / "other.tsv"
    other.write_text(star_counts_file([0] * 6).decode().replace("ENSG00000134086.8", "ENSGX"))
    with pytest.raises(ValueError, match="gene ids differ"):
        build_counts_matrix({**paths, "S3": other})


def test_clinical_harmonisation_hand_values(fake_cohort):
    server, state = fake_cohort
    fallback = pd.DataFrame({"patient_id": ["TCGA-B0-5095"], "grade": ["G3"]})
    table = harmonise_clinical(client(server).get_cases("TCGA-KIRC"), "TCGA-KIRC", fallback)
    table = table.set_index("patient_id")
    assert DAYS_PER_MONTH == pytest.approx(30.4375)
    np.testing.assert_allclose(table["os_months"], [913 / 30.4375, 500 / 30.4375, 1200 / 30.4375])
    assert table["os_event"].tolist() == [1, 0, 0]
    assert table["t_stage"].tolist() == ["T1", "T3", "T2"]
    assert table["t_group"].tolist() == ["low", "high", "low"]
    assert table["grade"].tolist() == [2, 3, 4]
    assert table["grade_source"].tolist() == ["gdc", "fallback", "gdc"]
    assert table["sex"].tolist() == ["male", "female", "male"]
    assert table["age"].tolist() == [60, 61, 62]
    without = harmonise_clinical(client(server).get_cases("TCGA-KIRC"), "TCGA-KIRC")
    assert without.set_index("patient_id").loc["TCGA-B0-5095", "grade_source"] == "missing"
    assert np.isnan(without.set_index("patient_id").loc["TCGA-B0-5095", "grade"])


def test_dead_without_days_to_death_has_missing_os():
    table = harmonise_clinical(
        [
            {
                "submitter_id": "P",
                "demographic": {"vital_status": "Dead"},
                "diagnoses": [{"days_to_last_follow_up": 50, "ajcc_pathologic_t": "TX"}],
            }
        ],
        "X",
    )
    assert np.isnan(table.loc[0, "os_months"]) and table.loc[0, "t_stage"] is None


def test_merge_mafs_keeps_tmb_columns(fake_cohort, tmp_path):
    server, state = fake_cohort
    paths = []
    for f in state.gdc_files:
        if f.file_name.endswith(".maf.gz"):
            paths.append(tmp_path / f.file_name)
            paths[-1].write_bytes(f.content)
    maf = merge_mafs(paths)
    assert len(maf) == 1 + 2 + 3 - 1  # patient index i carries min(i + 1, 2) mutations
    assert maf.columns.tolist()[:6] == [
        "Hugo_Symbol",
        "Tumor_Sample_Barcode",
        "Variant_Classification",
        "Variant_Type",
        "Chromosome",
        "Start_Position",
    ]
    assert maf.groupby("patient_id").size().to_dict() == {
        "TCGA-B0-5094": 1,
        "TCGA-B0-5095": 2,
        "TCGA-CJ-4642": 2,
    }
