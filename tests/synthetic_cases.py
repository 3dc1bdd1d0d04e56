"""Synthetic patients on the analysis grid (phases, reference tumour and kidney), written the
way the imaging stage writes them; shared by the nnU-Net tests and benchmark."""

from __future__ import annotations

from pathlib import Path

from radiogenomics.imaging import registration
from radiogenomics.cohort.synthetic import generator as synthetic
from radiogenomics.imaging.ct import load_case, preprocess_case, write_image


def write_cases(root: Path, n_internal: int, seed: int = 11, spacing=(1.0, 1.0, 1.0)) -> list[dict]:
    """n_internal site A/B patients; per case: case_id, arterial, venous, tumor, kidney paths."""
    root = Path(root)
    phantoms = synthetic.simulate_cohort({"seed": seed, "n_internal": n_internal, "n_external": 0})["phantoms"]
    cases = []
    for _, row in phantoms.iterrows():
        patient = row["patient_id"]
        raw, truth, out = root / "raw" / patient, root / "truth" / patient, root / "imaging" / patient
        if not (out / "kidney.nii.gz").exists():
            manifest = synthetic.write_phantom(row, raw, truth, spacing)
            manifest = {k: str(raw / Path(v).name) for k, v in manifest.items() if k in ("arterial", "venous", "mask")}
            images, mask = load_case(patient, manifest, ["arterial", "venous"], "venous")
            result = registration.register_case(patient, images, mask, {"reference": "venous"}, seed)
            resampled, tumour = preprocess_case(
                images, mask, spacing, "bspline", "venous", registration.transforms_of(result)
            )
            for phase, image in resampled.items():
                write_image(image, out / f"{phase}.nii.gz")
            write_image(tumour, out / "tumor.nii.gz")
            (truth / "kidney.nii.gz").replace(out / "kidney.nii.gz")
        cases.append({"case_id": patient, **{name: str(out / f"{name}.nii.gz") for name in ("arterial", "venous", "tumor", "kidney")}})
    return cases
