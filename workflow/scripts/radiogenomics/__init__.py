"""radiogenomics: the library behind the ccRCC CT radiomics + radiogenomics workflow.

Plain functions and estimators on numpy/pandas, one small module per job (io, synthetic,
imaging, cases, regions, features, ...). Snakemake scripts under ``workflow/scripts`` are thin
shims over these functions.
"""

__version__ = "0.1.0"
