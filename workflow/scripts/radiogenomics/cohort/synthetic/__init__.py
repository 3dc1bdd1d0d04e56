"""The synthetic ccRCC cohort: patients and clinical table (``generator``), CT phantoms,
omics and H&E slides, all driven by one latent aggressiveness per patient."""
