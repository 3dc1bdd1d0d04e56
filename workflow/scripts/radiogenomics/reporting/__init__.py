"""Stage 9, report: the study's HTML report and the RO-Crate export of a run."""
