# GSVA ssGSEA reference for tests/test_genomics_estimate.py: 500 genes x 20 samples of normal
# noise (no ties), 5 random gene sets of 15-60 genes, gsva(method = "ssgsea", tau = 0.25) with
# ssgsea.norm = FALSE and TRUE. Writes expression.csv (genes x samples), gene_sets.csv
# (set, gene), ssgsea_raw.csv / ssgsea_norm.csv (sets x samples) and versions.json.
suppressPackageStartupMessages(library(GSVA))

set.seed(20240614)
expression <- matrix(rnorm(500 * 20, mean = 6, sd = 2), nrow = 500,
                     dimnames = list(sprintf("gene%03d", 1:500), sprintf("sample%02d", 1:20)))
expression[1:30, 1:10] <- expression[1:30, 1:10] + 2
sets <- lapply(c(15, 25, 30, 45, 60), function(n) sample(rownames(expression), n))
names(sets) <- sprintf("SET%d", seq_along(sets))
sets$SET1 <- union(sets$SET1, rownames(expression)[1:30])
write.csv(data.frame(gene = rownames(expression), expression, check.names = FALSE), "expression.csv",
          row.names = FALSE)
write.csv(data.frame(set = rep(names(sets), lengths(sets)), gene = unlist(sets)), "gene_sets.csv",
          row.names = FALSE)
for (norm in c(FALSE, TRUE)) {
  scores <- gsva(expression, sets, method = "ssgsea", tau = 0.25, ssgsea.norm = norm, verbose = FALSE)
  write.csv(data.frame(set = rownames(scores), scores, check.names = FALSE),
            if (norm) "ssgsea_norm.csv" else "ssgsea_raw.csv", row.names = FALSE)
}
versions <- list(R = R.version.string, GSVA = as.character(packageVersion("GSVA")), script = "make.R",
                 seed = 20240614)
jsonlite::write_json(versions, "versions.json", auto_unbox = TRUE, pretty = TRUE)
