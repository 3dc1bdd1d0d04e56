# WGCNA reference for tests/test_genomics_wgcna_parity.py: simulated co-expression
# (simulateDatExpr: 4 modules + background, 1000 genes x 60 samples), then the step-by-step
# WGCNA path for an unsigned and a signed network:
#   pickSoftThreshold(powerVector = 1:20, RsquaredCut = 0.8) -> adjacency -> TOMsimilarity
#   -> hclust(1 - TOM, "average") -> cutreeDynamic(hybrid, deepSplit = 2, pamStage = TRUE,
#   minClusterSize = 30) -> mergeCloseModules(cutHeight = 0.25)
# Writes expression.csv (samples x genes), <type>_soft_power.csv, <type>_modules.csv (gene,
# dynamic label, merged colour) and versions.json.
suppressPackageStartupMessages(library(WGCNA))

set.seed(20240613)
n_samples <- 60
eigengenes <- matrix(rnorm(n_samples * 4), nrow = n_samples)
simulated <- simulateDatExpr(eigengenes, nGenes = 1000, modProportions = c(0.15, 0.12, 0.10, 0.08, 0.55),
                             minCor = 0.3, maxCor = 0.95, corPower = 1, backgroundNoise = 0.3,
                             signed = FALSE)
expression <- simulated$datExpr
colnames(expression) <- sprintf("gene%04d", seq_len(ncol(expression)))
rownames(expression) <- sprintf("sample%02d", seq_len(nrow(expression)))
write.csv(data.frame(sample = rownames(expression), expression, check.names = FALSE), "expression.csv",
          row.names = FALSE)

for (type in c("unsigned", "signed")) {
  sft <- pickSoftThreshold(expression, powerVector = 1:20, RsquaredCut = 0.8, networkType = type,
                           verbose = 0)
  write.csv(data.frame(sft$fitIndices, powerEstimate = sft$powerEstimate),
            paste0(type, "_soft_power.csv"), row.names = FALSE)
  adj <- adjacency(expression, power = sft$powerEstimate, type = type)
  dissimilarity <- 1 - TOMsimilarity(adj, TOMType = "unsigned", verbose = 0)
  tree <- hclust(as.dist(dissimilarity), method = "average")
  dynamic <- cutreeDynamic(tree, distM = dissimilarity, deepSplit = 2, pamStage = TRUE,
                           minClusterSize = 30, verbose = 0)
  merged <- mergeCloseModules(expression, labels2colors(dynamic), cutHeight = 0.25, verbose = 0)
  write.csv(data.frame(gene = colnames(expression), dynamic = dynamic, merged = merged$colors),
            paste0(type, "_modules.csv"), row.names = FALSE)
}

versions <- list(R = R.version.string, WGCNA = as.character(packageVersion("WGCNA")),
                 dynamicTreeCut = as.character(packageVersion("dynamicTreeCut")), script = "make.R",
                 seed = 20240613)
jsonlite::write_json(versions, "versions.json", auto_unbox = TRUE, pretty = TRUE)
