# DESeq2 reference for tests/test_genomics_deg_parity.py and test_genomics_deseq2.py: two simulated
# data sets with planted outlier counts, fitted with DESeq() defaults (Cook's replacement and refit, independent filtering).
#   unpaired: 28 samples, design ~ batch + condition (7 per batch x condition cell, so outliers are replaced)
#   paired:   8 patients x (1 normal + 2 tumour), design ~ patient + condition (at most 2 samples
#             per patient x condition cell: DESeq2 neither replaces nor flags outliers here)
# Writes <name>_counts.csv (genes x samples), <name>_coldata.csv, <name>_results.csv (results() and
# the dispersion steps' mcols), <name>_dispersion_function.json (trend coefficients, prior
# variance), versions.json.
suppressPackageStartupMessages(library(DESeq2))

plant_outliers <- function(counts, genes, samples, factor = 40) {
  for (k in seq_along(genes)) {
    g <- genes[k]; s <- samples[k]
    counts[g, s] <- as.integer(max(counts[g, ]) * factor + 100)
  }
  counts
}

export <- function(name, dds, contrast) {
  dds <- DESeq(dds, quiet = TRUE)
  res <- results(dds, contrast = contrast)
  m <- mcols(dds)
  # dispersion steps as DESeq2 took them (iterations of the line searches and of fitBeta's IRLS),
  # for tests/test_genomics_deseq2.py
  out <- data.frame(gene = rownames(res), baseMean = res$baseMean,
                    log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
                    pvalue = res$pvalue, padj = res$padj, dispersion = dispersions(dds),
                    dispGeneEst = m$dispGeneEst, dispFit = m$dispFit,
                    replaced = if (is.null(m$replace)) FALSE else m$replace,
                    dispGeneIter = m$dispGeneIter, dispMAP = m$dispMAP, dispIter = m$dispIter,
                    dispOutlier = m$dispOutlier, betaIter = m$betaIter, betaConv = m$betaConv)
  write.csv(out, paste0(name, "_results.csv"), row.names = FALSE)
  dispersion_function <- dispersionFunction(dds)
  jsonlite::write_json(list(coefficients = as.list(attr(dispersion_function, "coefficients")),
                            dispPriorVar = attr(dispersion_function, "dispPriorVar"),
                            varLogDispEsts = attr(dispersion_function, "varLogDispEsts")),
                       paste0(name, "_dispersion_function.json"), auto_unbox = TRUE, digits = NA,
                       pretty = TRUE)
  counts <- counts(dds)
  write.csv(data.frame(gene = rownames(counts), counts, check.names = FALSE),
            paste0(name, "_counts.csv"), row.names = FALSE)
  write.csv(data.frame(sample = colnames(dds), as.data.frame(colData(dds))[, names(colData(dds)) != "sizeFactor", drop = FALSE]),
            paste0(name, "_coldata.csv"), row.names = FALSE)
}

set.seed(20240611)
unpaired <- makeExampleDESeqDataSet(n = 2000, m = 28, betaSD = 1, interceptMean = 4,
                                    interceptSD = 2, dispMeanRel = function(x) 4 / x + 0.1)
colnames(unpaired) <- sprintf("S%02d", seq_len(ncol(unpaired)))
rownames(unpaired) <- sprintf("gene%04d", seq_len(nrow(unpaired)))
unpaired$batch <- factor(rep(c("b1", "b2"), times = 14))
counts(unpaired) <- plant_outliers(counts(unpaired), genes = seq(5, 400, by = 20),
                                   samples = rep(1:28, length.out = 20))
design(unpaired) <- ~ batch + condition
export("unpaired", unpaired, c("condition", "B", "A"))

set.seed(20240612)
n_patients <- 8
n_genes <- 2000
patient <- factor(sprintf("P%d", rep(seq_len(n_patients), each = 3)))
condition <- factor(rep(c("normal", "tumour", "tumour"), times = n_patients),
                    levels = c("normal", "tumour"))
# gene means, patient effects exp(N(0, 0.4)), a tumour effect N(0, 1.5) in a fifth of the genes,
# DESeq2-like dispersion trend 0.05 + 2 / mean
base_mean <- 2^rnorm(n_genes, mean = 6, sd = 2.5)
patient_effect <- matrix(exp(rnorm(n_genes * n_patients, sd = 0.4)), nrow = n_genes)[, as.integer(patient)]
tumour_lfc <- ifelse(runif(n_genes) < 0.2, rnorm(n_genes, sd = 1.5), 0)
mu <- base_mean * patient_effect * 2^outer(tumour_lfc, condition == "tumour")
paired_counts <- matrix(rnbinom(length(mu), mu = mu, size = 1 / (0.05 + 2 / mu)), nrow = n_genes)
dimnames(paired_counts) <- list(sprintf("gene%04d", seq_len(n_genes)),
                                sprintf("%s_%s%d", patient, condition, rep(c(1, 1, 2), n_patients)))
paired_counts <- plant_outliers(paired_counts, genes = seq(7, 400, by = 20),
                                samples = rep(1:24, length.out = 20))
paired <- DESeqDataSetFromMatrix(paired_counts, data.frame(patient, condition), ~ patient + condition)
export("paired", paired, c("condition", "tumour", "normal"))

versions <- list(R = R.version.string, DESeq2 = as.character(packageVersion("DESeq2")),
                 script = "make.R", seeds = c(20240611, 20240612))
jsonlite::write_json(versions, "versions.json", auto_unbox = TRUE, pretty = TRUE)
