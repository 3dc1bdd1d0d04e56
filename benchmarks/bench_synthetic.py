"""Time write_phantom per site, as a ratio to writing the same volumes with SimpleITK alone.

Usage: python benchmarks/bench_synthetic.py [n_per_site]
"""

import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from radiogenomics.cohort.synthetic import generator as synthetic  # noqa: E402


def main(n_per_site: int = 2) -> None:
    cohort = synthetic.simulate_cohort({"seed": 1, "n_internal": 24, "n_external": 6})
    phantoms = cohort["phantoms"].assign(format="nifti")
    with tempfile.TemporaryDirectory() as tmp:
        for site, rows in phantoms.groupby("site"):
            total, baseline = 0.0, 0.0
            for _, row in rows.head(n_per_site).iterrows():
                start = time.perf_counter()
                manifest = synthetic.write_phantom(row, Path(tmp) / row.patient_id, Path(tmp) / "t")
                total += time.perf_counter() - start
                images = [sitk.ReadImage(manifest[k]) for k in ("arterial", "venous", "mask")]
                start = time.perf_counter()
                for k, image in enumerate(images):
                    sitk.WriteImage(image, str(Path(tmp) / f"copy{k}.nii.gz"), useCompression=True)
                baseline += time.perf_counter() - start
            print(
                f"site {site}: write_phantom {total / n_per_site:.2f} s/patient, "
                f"{total / baseline:.1f}x the time to only write its NIfTI files"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
