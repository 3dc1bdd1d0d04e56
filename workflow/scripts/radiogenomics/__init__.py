"""radiogenomics: the library behind the ccRCC CT radiomics + radiogenomics workflow.

Plain functions and estimators on numpy/pandas, one small module per job, in one sub-package
per stage (cohort, imaging, segmentation, regions, features, models, evaluation, genomics,
pathomics, reporting) and ``core`` for what every stage uses (docs/architecture.md).
Snakemake scripts under ``workflow/scripts`` are thin shims over these functions.
"""

__version__ = "0.1.0"
