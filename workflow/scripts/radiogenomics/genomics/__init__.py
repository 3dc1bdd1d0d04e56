"""Radiogenomics: link imaging scores to tumour biology (DEGs, enrichment, WGCNA,
immune deconvolution, ESTIMATE, TMB) as studies S1, S2 and S5 do."""
