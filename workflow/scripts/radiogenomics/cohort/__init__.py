"""Stage 1, cohort: the synthetic generator (``synthetic``), public acquisition (``public``)
and the cohort assembly (inspection results, exclusions, the split)."""
