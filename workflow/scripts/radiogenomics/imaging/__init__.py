"""Stage 2, imaging: reading CT (NIfTI, DICOM), scan checks, the analysis grid, phase
registration and masks drawn on any phase carried onto the analysis grid."""
