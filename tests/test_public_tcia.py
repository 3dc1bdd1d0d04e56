import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from fake_servers import (  # noqa: F401
    fake_cohort,
    fast_policy,
    source_volume,
    write_dicom_series,
)

from radiogenomics.core.cases import BadCase
from radiogenomics.cohort.public.archive import UnsafeArchive
from radiogenomics.imaging.dicom import read_dicom_series
from radiogenomics.cohort.public.http import DownloadError
from radiogenomics.cohort.public.tcia import (
    SeriesRules,
    SeriesVerificationError,
    TciaClient,
    choose_series,
    classify_phase,
    contrast_agent_from_header,
    read_md5_table,
)


def client(server, attempts=4):
    return TciaClient(f"{server.url}/tcia", policy=fast_policy(attempts))


def test_get_series_lists_real_fields_and_empty_body_is_empty_table(fake_cohort):
    server, state = fake_cohort
    table = client(server).get_series("TCGA-KIRC", "TCGA-B0-5094")
    assert len(table) == 3 and set(table["PatientID"]) == {"TCGA-B0-5094"}
    assert {"SeriesInstanceUID", "ImageCount", "SeriesDescription", "Modality"} <= set(table)
    empty = client(server).get_series("TCGA-KIRC", "TCGA-XX-0000")
    assert state.requests[-1][0] == "tcia_series" and empty.empty
    assert "SeriesInstanceUID" in empty.columns


def test_get_series_retries_server_errors_and_cut_off_answers(fake_cohort):
    server, state = fake_cohort
    state.inject("tcia_series", "500", "timeout", "truncate")
    assert len(client(server).get_series("TCGA-KIRC")) == 9
    assert state.count("tcia_series") == 4


def test_client_errors_name_the_url(fake_cohort):
    server, state = fake_cohort
    broken = TciaClient(f"{server.url}/nowhere", policy=fast_policy())
    with pytest.raises(DownloadError, match="nowhere/getSeries.*HTTP 404"):
        broken.get_series("TCGA-KIRC")


@pytest.mark.parametrize(
    "description,agent,phase",
    [
        ("ABD PEL W/CONTRAST PORTAL VENOUS", None, "venous"),
        ("ARTERIAL PHASE 2.5MM", None, "arterial"),
        ("CORTICOMEDULLARY", None, "arterial"),
        ("NEPHROGRAPHIC 5MM", None, "venous"),
        ("Pre contrast abdomen", None, "non_contrast"),
        ("ABD W/O", None, "non_contrast"),
        ("DELAYED 10 MIN", None, "delayed"),
        ("ABDOMEN W/ CONTRAST", None, "venous"),  # generic contrast -> configured default
        ("5MM AXIAL", None, "unknown"),
        ("5MM AXIAL", "OMNIPAQUE 350", "venous"),
        ("5MM AXIAL", "NONE", "non_contrast"),
        ("5MM AXIAL", "", "non_contrast"),
    ],
)
def test_classify_phase(description, agent, phase):
    assert classify_phase(description, SeriesRules(), agent) == phase


def _listing(rows):
    return pd.DataFrame(
        rows,
        columns=[
            "PatientID",
            "SeriesInstanceUID",
            "Modality",
            "SeriesDescription",
            "ImageCount",
            "SeriesNumber",
        ],
    )


def test_choose_series_prefers_most_images_and_skips_scouts_and_other_modalities():
    table = _listing(
        [
            ["P1", "u1", "CT", "PORTAL VENOUS 5MM", 60, 3],
            ["P1", "u2", "CT", "PORTAL VENOUS 1.25MM", 240, 4],
            ["P1", "u3", "CT", "SCOUT", 300, 1],
            ["P1", "u4", "MR", "VENOUS", 300, 5],
            ["P1", "u5", "CT", "ARTERIAL", 10, 6],  # too few images
            ["P2", "v1", "CT", "ART PHASE", 100, 2],
            ["P2", "v2", "CT", "ART PHASE", 100, 1],  # same size: lower SeriesNumber wins
        ]
    )
    chosen = choose_series(table, SeriesRules(), ["arterial", "venous"])
    picks = chosen[chosen["chosen_for"] != ""].set_index("SeriesInstanceUID")["chosen_for"]
    assert picks.to_dict() == {"u2": "venous", "v2": "arterial"}


def test_overrides_replace_or_remove_a_choice():
    table = _listing(
        [
            ["P1", "u1", "CT", "PORTAL VENOUS", 60, 3],
            ["P1", "u2", "CT", "AXIAL 5MM", 50, 4],
            ["P2", "v1", "CT", "ARTERIAL", 90, 2],
        ]
    )
    overrides = pd.DataFrame(
        {"patient_id": ["P1", "P2"], "phase": ["venous", "arterial"], "series_uid": ["u2", ""]}
    )
    chosen = choose_series(table, SeriesRules(), ["arterial", "venous"], overrides)
    picks = chosen[chosen["chosen_for"] != ""].set_index("SeriesInstanceUID")["chosen_for"]
    assert picks.to_dict() == {"u2": "venous"}
    with pytest.raises(ValueError, match="not listed"):
        choose_series(
            table,
            SeriesRules(),
            ["venous"],
            pd.DataFrame({"patient_id": ["P1"], "phase": ["venous"], "series_uid": ["nope"]}),
        )


def test_md5_table_parsing(tmp_path):
    path = tmp_path / "md5hashes.csv"
    path.write_text("Filename,MD5Hash\n00000002.dcm,ABCDEF\n00000001.dcm,012345\n")
    assert read_md5_table(path) == {"00000002.dcm": "abcdef", "00000001.dcm": "012345"}


def test_download_series_under_faults_verifies_and_keeps_license(fake_cohort, tmp_path):
    server, state = fake_cohort
    series = state.series[0]
    state.inject("tcia_image", "500", "truncate", "bad_md5")
    dest = tmp_path / "dicom" / "venous"
    result = client(server, attempts=3).download_series(series.series_uid, dest, len(series.files))
    assert result.fetched and result.path == dest
    assert {p.name for p in dest.glob("*.dcm")} == set(series.files)
    assert all((dest / n).read_bytes() == b for n, b in series.files.items())
    assert (dest / "LICENSE").read_text().startswith("Creative Commons")
    assert sorted(p.name for p in tmp_path.joinpath("dicom").iterdir()) == ["venous"]
    before = len(state.requests)
    again = client(server).download_series(series.series_uid, dest, len(series.files))
    assert not again.fetched and len(state.requests) == before
    assert (again.sha256, again.size_bytes, again.downloaded_at) == (
        result.sha256,
        result.size_bytes,
        result.downloaded_at,
    )


def test_zip_slip_series_is_refused_with_clear_error_and_nothing_lands(fake_cohort, tmp_path):
    server, state = fake_cohort
    series = state.series[0]
    state.inject("tcia_image", "zipslip")
    dest = tmp_path / "dicom" / "venous"
    with pytest.raises(UnsafeArchive, match=r"'\.\./\.\./escaped\.dcm' contains '\.\.'"):
        client(server).download_series(series.series_uid, dest, len(series.files))
    assert not dest.exists() and list(tmp_path.rglob("escaped.dcm")) == []
    assert [p.name for p in tmp_path.joinpath("dicom").iterdir()] == []


def test_image_count_mismatch_is_an_error(fake_cohort, tmp_path):
    server, state = fake_cohort
    series = state.series[0]
    with pytest.raises(SeriesVerificationError, match="ImageCount says 99"):
        client(server, attempts=2).download_series(series.series_uid, tmp_path / "s", 99)
    assert not (tmp_path / "s").exists()


def test_fake_tcia_dicom_converts_to_source_geometry_and_values(fake_cohort, tmp_path):
    server, state = fake_cohort
    series = state.series[1]  # patient 0, arterial: source_volume(seed=1)
    dest = tmp_path / "s"
    client(server).download_series(series.series_uid, dest, len(series.files))
    image = read_dicom_series(dest, "TCGA-B0-5094")
    volume, spacing, origin, direction = source_volume(1)
    expected = sitk.GetImageFromArray(volume)
    expected.SetSpacing(spacing)
    expected.SetOrigin(origin)
    expected.SetDirection(direction.ravel().tolist())
    assert image.GetSize() == expected.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), expected.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(image.GetOrigin(), expected.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(image.GetDirection(), expected.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume)
    nifti = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image, str(nifti))
    back = sitk.ReadImage(str(nifti))
    np.testing.assert_allclose(back.GetOrigin(), origin, atol=1e-4)
    np.testing.assert_allclose(back.GetDirection(), direction.ravel(), atol=1e-5)
    assert contrast_agent_from_header(dest) == "OMNIPAQUE 350"


def test_read_dicom_series_refuses_empty_and_mixed_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadCase, match="no DICOM series"):
        read_dicom_series(tmp_path / "empty", "P1")
    volume = np.zeros((2, 3, 3), np.int16)
    for uid in ("1.2.3.1", "1.2.3.2"):
        write_dicom_series(
            volume,
            (1, 1, 1),
            (0, 0, 0),
            np.eye(3),
            tmp_path / "mixed",
            patient_id="P1",
            series_uid=uid,
            description="x",
        )
        (tmp_path / "mixed").joinpath("00000001.dcm").rename(tmp_path / "mixed" / f"{uid}a.dcm")
        (tmp_path / "mixed").joinpath("00000002.dcm").rename(tmp_path / "mixed" / f"{uid}b.dcm")
    with pytest.raises(BadCase, match="2 DICOM series in one folder"):
        read_dicom_series(tmp_path / "mixed", "P1")


def test_series_record_digests_are_those_of_the_documented_shell_pipeline(fake_cohort, tmp_path):
    import subprocess

    server, state = fake_cohort
    series = state.series[0]
    dest = tmp_path / "venous"
    result = client(server).download_series(
        series.series_uid, dest, len(series.files), series.patient_id
    )
    listing = "find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' {}sum | {}sum"
    for tool, digest in (("sha256", result.sha256), ("md5", result.md5)):
        shell = listing.format(tool, tool)
        done = subprocess.run(shell, shell=True, cwd=dest, capture_output=True, text=True)
        assert done.stdout.split()[0] == digest, tool
    assert result.size_bytes == sum(p.stat().st_size for p in dest.iterdir())
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [*series.files, "LICENSE", "md5hashes.csv"]
    )
