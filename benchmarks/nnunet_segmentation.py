"""nnU-Net v2 segmentation on CPU (and GPU when there is one): training time, inference seconds
per case, test-patient Dice, and the share of a study's wall time that segmentation takes.

Two modes:
  python benchmarks/nnunet_segmentation.py measure [N_TRAIN] [N_TEST] [EPOCHS] [ITERATIONS]
          [--overlay CONFIG.yaml] [--cases DIR]
      Synthetic patients of the default study's generator (sites A/B, 1 mm analysis grid),
      the default study's nnU-Net settings (config/config.yaml segmentation.train), trained on
      the first N_TRAIN and predicted on the next N_TEST; prints training seconds, prediction
      seconds per case with and without test-time mirroring, and the tumour and kidney Dice.
      --overlay: a config file whose segmentation keys replace the default study's;
      --cases: a folder to keep the synthetic patients in and reuse them from.
  python benchmarks/nnunet_segmentation.py share WORKDIR
      A finished study run with segmentation.method nnunet: per-rule job seconds from
      Snakemake's metadata, the segmentation rules' share of all job seconds and of the wall
      time (first job start to last job end).
  python benchmarks/nnunet_segmentation.py truth WORKDIR
      A finished synthetic study run with segmentation.method nnunet: per cohort, the tumour
      Dice of the predicted masks against the planted ones (results/segment/qc.tsv), the habitat
      ARI against the planted habitat maps inside both masks, and the OS radscore's Harrell C
      beside the planted risk's (results/models/os/truth_comparison.tsv).
"""

import base64
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "workflow" / "scripts"), str(REPO / "tests")]

SEGMENTATION_RULES = {"nnunet_train", "nnunet_predict", "segment_patient", "segmentation_qc"}


def measure(n_train: int, n_test: int, epochs: int, iterations: int, overlay: Path | None = None,
            cases_dir: Path | None = None) -> None:
    import SimpleITK as sitk
    import torch
    from synthetic_cases import write_cases

    from radiogenomics.segmentation import nnunet
    from radiogenomics.segmentation.masks import split_label_map
    from radiogenomics.segmentation.qc import agreement

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    segmentation = config["segmentation"]
    if overlay is not None:  # a config file's segmentation keys over the default study's
        changes = yaml.safe_load(Path(overlay).read_text()).get("segmentation", {})
        segmentation.update({**changes, "train": {**segmentation["train"], **changes.get("train", {})}})
    settings = {**segmentation["train"], "epochs": epochs, "iterations_per_epoch": iterations}
    root = Path(tempfile.mkdtemp(prefix="nnunet-bench-"))
    start = time.perf_counter()
    # the synthetic patients are reused from cases_dir when they are already there
    cases = write_cases(cases_dir or root / "cases", n_train + n_test, seed=config["study"]["seed"])
    print(f"{len(cases)} synthetic patients written in {time.perf_counter() - start:.0f} s", flush=True)
    channels = segmentation["channels"]
    train = [{"case_id": c["case_id"], "images": [c[p] for p in channels], "tumor": c["tumor"], "kidney": c["kidney"]}
             for c in cases[:n_train]]  # fmt: skip
    record = nnunet.build_model(train, root / "model", root / "work", channels, segmentation["labels"],
                                settings, threads=segmentation["threads"], device="auto", seed=1)  # fmt: skip
    print(f"training: {n_train} cases, {epochs} x {iterations} iterations, {record['train_seconds']:.0f} s "
          f"on {record['device']} ({record['threads']} threads)", flush=True)  # fmt: skip
    test = {c["case_id"]: [c[p] for p in channels] for c in cases[n_train:]}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for tta, step in ((False, 0.5), (False, 1.0), (True, 0.5)):
            out = root / f"pred_{device}_{tta}_{step}"
            timing = nnunet.predict_cases(root / "model", test, out, ["all"], "checkpoint_final.pth",
                                          segmentation["threads"], device, tta, step)  # fmt: skip
            seconds = list(timing["case_seconds"].values())
            print(f"prediction on {device}, mirroring {tta}, tile step {step}: "
                  f"model load {timing['load_seconds']:.1f} s, "
                  f"{np.median(seconds):.1f} s per case (median of {len(seconds)}, range "
                  f"{min(seconds):.1f}-{max(seconds):.1f})", flush=True)  # fmt: skip
            dice = []
            for case in cases[n_train:]:
                tumour, kidney = split_label_map(sitk.ReadImage(str(out / f"{case['case_id']}.nii.gz")),
                                                 segmentation["labels"], segmentation["postprocess"])  # fmt: skip
                dice.append((agreement(tumour, sitk.ReadImage(case["tumor"]))["dice"],
                             agreement(kidney, sitk.ReadImage(case["kidney"]))["dice"]))  # fmt: skip
            dice = np.asarray(dice)
            print(f"  tumour Dice median {np.median(dice[:, 0]):.3f} (min {dice[:, 0].min():.3f}, "
                  f"share >= 0.85: {np.mean(dice[:, 0] >= 0.85):.2f}); kidney Dice median "
                  f"{np.median(dice[:, 1]):.3f}", flush=True)  # fmt: skip


def share(workdir: Path) -> None:
    jobs = []
    for path in (workdir / ".snakemake" / "metadata").iterdir():
        record = json.loads(path.read_text())
        if record.get("starttime") and record.get("endtime"):
            output = base64.b64decode(path.name.replace("@", "/")).decode(errors="replace")
            jobs.append((record["rule"], record["starttime"], record["endtime"], record.get("job_hash"), output))
    # one metadata record per output file: count each job (rule, hash) once
    unique = {(rule, job_hash): (start, end) for rule, start, end, job_hash, _ in jobs}
    seconds = {}
    for (rule, _), (start, end) in unique.items():
        seconds[rule] = seconds.get(rule, 0.0) + end - start
    total = sum(seconds.values())
    wall = max(end for _, end in unique.values()) - min(start for start, _ in unique.values())
    segmentation = sum(v for rule, v in seconds.items() if rule in SEGMENTATION_RULES)
    for rule, value in sorted(seconds.items(), key=lambda item: -item[1]):
        marker = "  <- segmentation" if rule in SEGMENTATION_RULES else ""
        print(f"{rule:28s} {value:8.0f} job-s{marker}")
    print(f"segmentation: {segmentation:.0f} of {total:.0f} job-s ({segmentation / total:.1%}); "
          f"study wall time {wall:.0f} s")


def truth(workdir: Path) -> None:
    import pandas as pd

    from radiogenomics.regions.recovery import cohort_summary, habitat_agreement

    results = workdir / "results"
    clinical = pd.read_csv(results / "cohort/clinical.tsv", sep="\t")
    qc = pd.read_csv(results / "segment/qc.tsv", sep="\t").merge(clinical[["patient_id", "cohort"]])
    comparison = pd.read_csv(results / "models/os/truth_comparison.tsv", sep="\t").set_index("cohort")
    habitats = cohort_summary(habitat_agreement(results, qc)).set_index("cohort")
    for cohort, patients in qc.groupby("cohort"):
        c, ari = comparison.loc[cohort], habitats.loc[cohort]
        print(f"{cohort:9s} n={len(patients):3d}  tumour Dice median {patients.dice.median():.3f} "
              f"(min {patients.dice.min():.3f})  habitat ARI mean {ari.ari_mean:.3f} "
              f"(min {ari.ari_min:.3f})  OS radscore C {c.c_radscore:.3f} vs planted risk "
              f"{c.c_truth:.3f} (ratio {c.c_radscore / c.c_truth:.2f})")


if __name__ == "__main__":
    if sys.argv[1] == "share":
        share(Path(sys.argv[2]))
    elif sys.argv[1] == "truth":
        truth(Path(sys.argv[2]))
    else:
        arguments = sys.argv[2:]
        options = {}
        for flag, key in (("--overlay", "overlay"), ("--cases", "cases_dir")):
            if flag in arguments:
                at = arguments.index(flag)
                options[key] = Path(arguments[at + 1])
                del arguments[at : at + 2]
        counts = [int(a) for a in arguments]
        defaults = [30, 20, 20, 25]  # training cases, test cases, epochs, iterations per epoch
        measure(*(counts + defaults[len(counts):]), **options)
