"""Shared by every stage: atomic file output, provenance sidecars and their audit, config
validation, the bad-case exception, the figure writer and the SLURM plan."""
