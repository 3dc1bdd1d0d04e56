# Quick start: `make study` runs the default synthetic study; `make test` runs the test suite.
CORES ?= 2
SNAKEMAKE = .venv/bin/snakemake

.PHONY: venv study features test lint format benchmark reference screenshots

venv:
	bin/setup-venv

study: venv
	$(SNAKEMAKE) --cores $(CORES) --profile profiles/default

features: venv
	$(SNAKEMAKE) --cores $(CORES) --profile profiles/default features

test: venv
	bin/run-tests

lint: venv
	$(SNAKEMAKE) --lint
	.venv/bin/snakefmt --check Snakefile workflow/Snakefile workflow/rules

format: venv
	.venv/bin/snakefmt Snakefile workflow/Snakefile workflow/rules

benchmark: venv
	.venv/bin/python benchmarks/run_all.py

# R reference outputs for the parity tests: every tests/reference/NAME/make.R, run with its own
# directory as the working directory (needs R; the tests only read the stored files).
reference:
	@set -e; for script in tests/reference/*/make.R; do \
		echo "Rscript $$script"; (cd "$$(dirname "$$script")" && Rscript --vanilla make.R); \
	done

# The README's report screenshots, retaken by the browser test (runs the tiny study unless
# TINY_STUDY_DIR names a finished run).
screenshots: venv
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_report_browser.py -k tiny_study
	mkdir -p docs/images && cp tests/artifacts/tiny_study_report_*.png docs/images/
