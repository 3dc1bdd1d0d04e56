from pathlib import Path

import pytest
import yaml

from radiogenomics.public import gdc, tcia
from radiogenomics.public.http import RetryPolicy

PRESETS = sorted((Path(__file__).resolve().parents[1] / "config" / "studies").glob("s[12]_*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_presets_configure_the_public_clients(preset):
    cohort = yaml.safe_load(preset.read_text())["cohort"]
    assert cohort["source"] == "public"
    policy = RetryPolicy.from_config(cohort["download"])
    assert policy.attempts >= 3 and policy.delay(2) == 2 * policy.delay(1)
    rules = tcia.SeriesRules.from_config(cohort["tcia"]["series_rules"])
    assert rules.modality == "CT"
    assert cohort["tcia"]["base_url"] == tcia.DEFAULT_BASE_URL
    assert cohort["gdc"]["base_url"] == gdc.DEFAULT_BASE_URL
    assert set(cohort["tcia"]["required_phases"]) <= set(cohort["tcia"]["phases"])


def test_two_presets_exist():
    assert [p.stem for p in PRESETS] == ["s1_tcga_kirc_os", "s2_tcga_kirc_tstage"]
