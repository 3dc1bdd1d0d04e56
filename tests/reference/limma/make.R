# limma-voom reference for tests/test_genomics_limma.py on the DESeq2 reference counts
# (../deseq2/*_counts.csv, written by ../deseq2/make.R, which `make reference` runs first):
#   unpaired: design ~ batch + condition, coefficient conditionB
#   paired:   design ~ patient + condition, coefficient conditiontumour
# voom(counts, design) with library sizes = column sums (no TMM), lmFit, eBayes (defaults).
# Writes <name>_toptable.csv (every gene, input order) and versions.json.
suppressPackageStartupMessages(library(limma))

run <- function(name, formula, coef) {
  counts <- as.matrix(read.csv(file.path("..", "deseq2", paste0(name, "_counts.csv")),
                               row.names = 1, check.names = FALSE))
  coldata <- read.csv(file.path("..", "deseq2", paste0(name, "_coldata.csv")), row.names = 1)
  for (column in names(coldata)) coldata[[column]] <- factor(coldata[[column]])
  design <- model.matrix(formula, data = coldata[colnames(counts), , drop = FALSE])
  v <- voom(counts, design)
  fit <- eBayes(lmFit(v, design))
  table <- topTable(fit, coef = coef, number = Inf, sort.by = "none")
  write.csv(data.frame(gene = rownames(table), logFC = table$logFC, AveExpr = table$AveExpr,
                       t = table$t, P.Value = table$P.Value, adj.P.Val = table$adj.P.Val,
                       df.prior = fit$df.prior, s2.prior = fit$s2.prior),
            paste0(name, "_toptable.csv"), row.names = FALSE)
}

run("unpaired", ~ batch + condition, "conditionB")
run("paired", ~ patient + condition, "conditiontumour")

versions <- list(R = R.version.string, limma = as.character(packageVersion("limma")), script = "make.R")
jsonlite::write_json(versions, "versions.json", auto_unbox = TRUE, pretty = TRUE)
