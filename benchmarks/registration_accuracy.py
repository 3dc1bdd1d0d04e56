"""Registration accuracy and cost on default-config synthetic patients, generated directly.

For N patients of the default study (three quarters from the first internal ones, sites A/B,
one quarter from the first external ones, site C with 5 mm slices) (config/config.yaml's seed and
registration settings) the phantom is written, every phase registered to the reference phase
as the workflow's register_phases job does, and the target registration error is measured over
the planted tumour's voxels against the planted transform (results/truth/phase_transforms.tsv
in a workflow run). Seconds are CPU seconds of the registration (one thread, as in the
workflow) next to the wall time; the baseline in the same run is writing the phantom itself.

Usage: python benchmarks/registration_accuracy.py [n_patients] [configfile]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from radiogenomics.imaging import registration  # noqa: E402
from radiogenomics.cohort.synthetic import generator as synthetic  # noqa: E402
from radiogenomics.core.config import validate_config  # noqa: E402
from radiogenomics.imaging.ct import load_case  # noqa: E402


def main(n_patients: int = 20, configfile: str | None = None) -> pd.DataFrame:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if configfile:
        extra = yaml.safe_load(Path(configfile).read_text())
        for section, values in extra.items():
            config.setdefault(section, {}).update(values) if isinstance(values, dict) else config.update({section: values})
    validate_config(config, REPO / "config/schemas/config.schema.yaml")
    settings = config["imaging"]["registration"]
    reference = settings["reference"]
    mask_phase = config["cohort"]["mask_phase"] or reference
    params = {**config["synthetic"], "seed": config["study"]["seed"]}
    cohort = synthetic.simulate_cohort(params, reference, mask_phase)
    n_external = min(n_patients // 4, int(config["synthetic"]["n_external"]))
    internal = cohort["phantoms"].head(int(config["synthetic"]["n_internal"]))
    external = cohort["phantoms"].iloc[int(config["synthetic"]["n_internal"]):]
    phantoms = pd.concat([internal.head(n_patients - n_external), external.head(n_external)])
    phantoms = phantoms.assign(format="nifti")
    truth = synthetic.phase_transform_table(phantoms)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for _, row in phantoms.iterrows():
            start = time.perf_counter()
            manifest = synthetic.write_phantom(row, Path(tmp) / row.patient_id, Path(tmp) / "truth" / row.patient_id)
            phantom_s = time.perf_counter() - start
            images, mask = load_case(row.patient_id, manifest, config["imaging"]["phases"], mask_phase)
            cpu, wall = time.process_time(), time.perf_counter()
            result = registration.register_case(row.patient_id, images, mask, settings, config["study"]["seed"])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            record = {"patient_id": row.patient_id, "ok": True, **result}
            target = Path(tmp) / "truth" / row.patient_id / "habitats.nii.gz"
            table = registration.registration_table([record], truth, {row.patient_id: target})
            rows.append(table.assign(site=row.site, cpu_s=cpu, wall_s=wall, phantom_s=phantom_s))
            print(table.assign(cpu_s=round(cpu, 2), wall_s=round(wall, 2))[["patient_id", "phase", "tre_mm", "tre_max_mm", "tre_unregistered_mm", "iterations", "cpu_s", "wall_s"]].to_string(header=False, index=False), flush=True)
    result = pd.concat(rows, ignore_index=True)
    print(
        f"{len(result)} registrations ({n_patients} patients, {settings['method']}): TRE median "
        f"{result.tre_mm.median():.3f} mm, max {result.tre_mm.max():.3f} mm (max over tumour voxels "
        f"{result.tre_max_mm.max():.3f} mm); unregistered median {result.tre_unregistered_mm.median():.2f} mm, "
        f"max {result.tre_unregistered_mm.max():.2f} mm; CPU s per patient median {result.cpu_s.median():.2f} "
        f"(max {result.cpu_s.max():.2f}), wall {result.wall_s.median():.2f}; writing the phantom "
        f"{result.phantom_s.median():.2f} s: ratio {result.wall_s.median() / result.phantom_s.median():.2f}"
    )
    for site, group in result.groupby("site"):
        print(f"  site {site}: n={len(group)} TRE median {group.tre_mm.median():.3f} max {group.tre_mm.max():.3f}, CPU s median {group.cpu_s.median():.2f}")
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20, sys.argv[2] if len(sys.argv) > 2 else None)
