# R references for the survival parity tests (tests/test_survival_parity.py).
# Run by `make reference` inside this folder. Inputs: survival's lung and veteran, glmnet's
# CoxExample (all exported here as CSV) and synthetic_cohort.csv (written by synthetic_cohort.py
# from the project's generator; time in whole months, so deaths and censorings tie).
# Outputs: coxph coefficients, cox.zph tables (km / rank / identity), glmnet paths and cv.glmnet
# (deviance and C) with a stored foldid, and versions.json.
suppressPackageStartupMessages({
  library(survival)
  library(glmnet)
  library(jsonlite)
})

write_csv <- function(table, name) write.csv(table, name, row.names = FALSE)

# ---------------------------------------------------------------- inputs
lung_data <- na.omit(survival::lung[, c("time", "status", "age", "sex", "ph.ecog", "ph.karno",
                                        "wt.loss")])
lung_data$status <- as.integer(lung_data$status == 2)
names(lung_data) <- sub(".", "_", names(lung_data), fixed = TRUE)
write_csv(lung_data, "lung.csv")

vet <- survival::veteran
veteran_data <- data.frame(time = vet$time, status = vet$status, trt = vet$trt - 1,
                           karno = vet$karno, diagtime = vet$diagtime, age = vet$age,
                           prior = as.integer(vet$prior == 10),
                           smallcell = as.integer(vet$celltype == "smallcell"),
                           adeno = as.integer(vet$celltype == "adeno"),
                           large = as.integer(vet$celltype == "large"))
write_csv(veteran_data, "veteran.csv")

data(CoxExample, package = "glmnet")
cox_example <- data.frame(time = CoxExample$y[, "time"], status = CoxExample$y[, "status"],
                          CoxExample$x)
names(cox_example) <- c("time", "status", sprintf("x%02d", seq_len(ncol(CoxExample$x))))

synthetic <- read.csv("synthetic_cohort.csv")
synthetic$patient_id <- NULL

# ---------------------------------------------------------------- coxph and cox.zph
cox_models <- list(
  lung = list(data = lung_data, covariates = c("age", "sex", "ph_ecog", "ph_karno", "wt_loss")),
  veteran = list(data = veteran_data,
                 covariates = c("trt", "karno", "diagtime", "age", "prior", "smallcell",
                                "adeno", "large")),
  synthetic = list(data = synthetic,
                   covariates = c("age", "size_cm", "grade", "ecog", "mvi", "UP_Z001",
                                  "DOWN_Z001"))
)
for (name in names(cox_models)) {
  model <- cox_models[[name]]
  formula <- as.formula(paste("Surv(time, status) ~", paste(model$covariates, collapse = " + ")))
  fit <- coxph(formula, data = model$data, ties = "efron")
  s <- summary(fit)$coefficients
  write_csv(data.frame(variable = rownames(s), coef = s[, "coef"], se = s[, "se(coef)"],
                       z = s[, "z"], p = s[, "Pr(>|z|)"]), sprintf("coxph_%s.csv", name))
  write_json(list(loglik = fit$loglik, iterations = fit$iter), sprintf("coxph_%s.json", name),
             digits = NA, auto_unbox = FALSE)
  for (transform in c("km", "rank", "identity")) {
    zph <- cox.zph(fit, transform = transform)$table
    write_csv(data.frame(term = rownames(zph), chisq = zph[, "chisq"], df = zph[, "df"],
                         p = zph[, "p"]), sprintf("zph_%s_%s.csv", name, transform))
  }
}

# ---------------------------------------------------------------- glmnet and cv.glmnet
# Times in months (veteran, lung) keep every time below 256, where glmnet's 100 * eps shift of
# censoring times is representable: a censoring tied with a death then sorts after it (at risk).
months <- function(days) days / 30.4375
lasso_sets <- list(
  coxexample = list(x = CoxExample$x, time = cox_example$time, status = cox_example$status,
                    names = names(cox_example)[-(1:2)]),
  veteran = list(x = as.matrix(veteran_data[, -(1:2)]), time = months(veteran_data$time),
                 status = veteran_data$status, names = names(veteran_data)[-(1:2)]),
  lung = list(x = as.matrix(lung_data[, -(1:2)]), time = months(lung_data$time),
              status = lung_data$status, names = names(lung_data)[-(1:2)]),
  synthetic = list(x = as.matrix(synthetic[, -(1:2)]), time = synthetic$time,
                   status = synthetic$status, names = names(synthetic)[-(1:2)])
)
for (name in names(lasso_sets)) {
  set <- lasso_sets[[name]]
  colnames(set$x) <- set$names
  y <- cbind(time = set$time, status = set$status)
  set.seed(20240101)
  foldid <- sample(rep(seq_len(10), length.out = nrow(set$x)))
  write_csv(data.frame(time = set$time, status = set$status, foldid = foldid, set$x),
            sprintf("lasso_%s_input.csv", name))
  fit <- glmnet(set$x, y, family = "cox")
  write_csv(data.frame(lambda = fit$lambda, dev_ratio = fit$dev.ratio, df = fit$df,
                       deviance = coxnet.deviance(x = set$x, y = y, beta = fit$beta)),
            sprintf("lasso_%s_path.csv", name))
  beta <- as.matrix(fit$beta)
  write_csv(data.frame(variable = rownames(beta), beta, check.names = FALSE),
            sprintf("lasso_%s_beta.csv", name))
  for (measure in c("deviance", "C")) {
    cv <- cv.glmnet(set$x, y, family = "cox", foldid = foldid, type.measure = measure)
    write_csv(data.frame(lambda = cv$lambda, cvm = cv$cvm, cvsd = cv$cvsd, nzero = cv$nzero),
              sprintf("lasso_%s_cv_%s.csv", name, measure))
    nonzero <- function(s) {
      b <- as.matrix(coef(cv, s = s))
      rownames(b)[b[, 1] != 0]
    }
    write_json(list(lambda_min = cv$lambda.min, lambda_1se = cv$lambda.1se,
                    index_min = cv$index[["min", 1]], index_1se = cv$index[["1se", 1]],
                    genes_min = I(nonzero("lambda.min")), genes_1se = I(nonzero("lambda.1se"))),
               sprintf("lasso_%s_cv_%s.json", name, measure), digits = NA, auto_unbox = TRUE)
  }
}

# ---------------------------------------------------------------- glmnet's tie order, measured
# lung in days ties deaths with censorings at 269-444 days, above 256, where the shift is lost:
# glmnet's Fortran sort then decides whether such a censoring is in the death's risk set, and
# permuting the rows changes the coefficients. In months the fit does not depend on row order.
x <- as.matrix(lung_data[, -(1:2)])
permuted_difference <- function(time) {
  y <- cbind(time = time, status = lung_data$status)
  reference <- glmnet(x, y, family = "cox")
  set.seed(1)
  max(sapply(1:8, function(k) {
    o <- sample(nrow(x))
    fit <- glmnet(x[o, ], y[o, ], family = "cox", lambda = reference$lambda)
    max(abs(as.matrix(fit$beta) - as.matrix(reference$beta)))
  }))
}
write_json(list(
  lung_days_max_coefficient_change_over_8_row_permutations = permuted_difference(lung_data$time),
  lung_months_max_coefficient_change_over_8_row_permutations =
    permuted_difference(months(lung_data$time))
), "tie_order.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)

write_json(list(R = R.version.string, survival = as.character(packageVersion("survival")),
                glmnet = as.character(packageVersion("glmnet")),
                platform = R.version$platform),
           "versions.json", auto_unbox = TRUE, pretty = TRUE)
