"""Stage 5, features: PyRadiomics per region, deep CNN features, and robustness (mask
perturbation, second readers, ICC)."""
