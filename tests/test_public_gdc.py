import hashlib

import numpy as np
import pandas as pd
import pytest
from fake_servers import GENES, fake_cohort, fast_policy, star_counts_file  # noqa: F401

from radiogenomics.cohort.public.gdc import (
    CASE_FIELDS,
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


def test_dfs_and_recurrence_from_the_gdc_follow_ups(fake_cohort):
    """The fake GDC serves only the fields asked for, so a disease-status field missing from
    CASE_FIELDS would leave DFS unknown here."""
    server, state = fake_cohort
    table = harmonise_clinical(client(server).get_cases("TCGA-KIRC"), "TCGA-KIRC")
    table = table.set_index("patient_id")
    # Hand values (fake_servers.RECURRENCE_FOLLOW_UPS): recurrence on day 540 (dead on day
    # 913 later); with tumour on day 420 after tumour free on day 150; tumour free, last
    # contact on day 1200.
    assert table["recurrence"].tolist() == [1, 1, 0]
    np.testing.assert_allclose(table["dfs_months"], [540 / 30.4375, 420 / 30.4375, 1200 / 30.4375])
    assert table["dfs_event"].tolist() == [1, 1, 0]
    cases_query = next(r.body for r in state.requests if r.route == "gdc_cases")
    assert {"follow_ups.disease_response", "diagnoses.days_to_recurrence"} <= set(
        cases_query["fields"].split(",")
    )
    assert cases_query["fields"].split(",") == CASE_FIELDS


@pytest.mark.parametrize(
    "vital, diagnosis, follow_ups, expected",
    [
        # tumour free, then dead without recurrence: DFS counts the death (day 700)
        (
            {"vital_status": "Dead", "days_to_death": 700},
            {"last_known_disease_status": "Tumor free", "days_to_last_known_disease_status": 300},
            [],
            (0, 700, 1),
        ),
        # the diagnosis record's own recurrence flag and day
        (
            {"vital_status": "Alive"},
            {"progression_or_recurrence": "yes", "days_to_recurrence": 250},
            [{"days_to_follow_up": 900}],
            (1, 250, 1),
        ),
        # loco-regional recurrence as the last known status; the earlier of two days
        (
            {"vital_status": "Alive"},
            {
                "last_known_disease_status": "Loco-regional recurrence/progression",
                "days_to_recurrence": 380,
            },
            [
                {
                    "days_to_follow_up": 500,
                    "progression_or_recurrence": "Yes",
                    "days_to_progression": 460,
                }
            ],
            (1, 380, 1),
        ),
        # died before the recorded recurrence day (inconsistent record): the death comes first
        (
            {"vital_status": "Dead", "days_to_death": 200},
            {},
            [
                {"days_to_follow_up": 100, "disease_response": "TF-Tumor Free"},
                {"days_to_follow_up": 260, "progression_or_recurrence": "Yes"},
            ],
            (1, 200, 1),
        ),
        # never disease-free (with tumour at every visit): persistent disease, DFS unknown
        (
            {"vital_status": "Alive"},
            {},
            [
                {"days_to_follow_up": 100, "disease_response": "WT-With Tumor"},
                {"days_to_follow_up": 400, "disease_response": "WT-With Tumor"},
            ],
            (np.nan, np.nan, np.nan),
        ),
        # recurrence without any day: status known, DFS time unknown
        (
            {"vital_status": "Alive"},
            {"progression_or_recurrence": "yes"},
            [{"days_to_follow_up": 800}],
            (1, np.nan, np.nan),
        ),
        # no disease status at all ("Not Reported" is missing)
        (
            {"vital_status": "Alive"},
            {"progression_or_recurrence": "not reported"},
            [{"days_to_follow_up": 800, "disease_response": "Not Reported"}],
            (np.nan, np.nan, np.nan),
        ),
    ],
)
def test_dfs_hand_cases(vital, diagnosis, follow_ups, expected):
    case = {
        "submitter_id": "TCGA-XX-0001",
        "demographic": vital,
        "diagnoses": [{"days_to_last_follow_up": 800, **diagnosis}],
        "follow_ups": follow_ups,
    }
    row = harmonise_clinical([case], "TCGA-KIRC").iloc[0]
    recurrence, dfs_days, dfs_event = expected
    np.testing.assert_equal(row["recurrence"], recurrence)
    np.testing.assert_allclose(row["dfs_months"], dfs_days / DAYS_PER_MONTH)
    np.testing.assert_equal(row["dfs_event"], dfs_event)


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
