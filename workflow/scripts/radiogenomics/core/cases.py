"""Bad input: one exception type that names the patient, the file and the fix."""

from __future__ import annotations

import re

PATIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BadCase(Exception):
    """A patient whose input cannot be used; ``stage`` says where it was found."""

    def __init__(self, patient_id: str, path: str, reason: str, fix: str, stage: str = "inspect"):
        self.patient_id = str(patient_id)
        self.path = str(path)
        self.reason = reason
        self.fix = fix
        self.stage = stage
        super().__init__(f"patient {self.patient_id}: {reason} [file: {self.path}]. Fix: {fix}")

    def as_record(self) -> dict:
        return {
            "patient_id": self.patient_id,
            "stage": self.stage,
            "reason": self.reason,
            "file": self.path,
            "fix": self.fix,
        }


def check_patient_id(patient_id: str, source: str) -> None:
    """Patient ids become folder names; refuse anything that could escape or collide."""
    if not PATIENT_ID_PATTERN.match(str(patient_id)) or ".." in str(patient_id):
        raise BadCase(
            patient_id,
            source,
            "patient id contains path characters or is empty",
            "use letters, digits, '.', '_' and '-' only (e.g. TCGA-B0-5094)",
            stage="manifest",
        )
