# Everything installs into .venv from the package registry, and the browser tests' Chromium
# from Debian's (apt, where it is missing); nothing else is needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SAMPLE := data/sample/transactions.csv

.PHONY: install java browser demo test lint bench bench-large screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,mlflow,ui,spark]'
	touch $(STAMP)

install: $(STAMP) java browser

# --engine spark (pyspark, the [spark] extra) runs on a Java 17+ runtime: Debian's
# default-jre-headless where no java is on PATH (apt); without apt, install a JDK yourself
# (the Spark tests are skipped, saying so, while java is missing).
java:
	@if command -v java >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		$$SUDO apt-get install -y -q --no-install-recommends default-jre-headless; \
	else echo "no apt-get here: install a Java 17+ runtime for --engine spark"; fi

# The real-browser tests (tests/browser.py) drive Debian's chromium through chromium-driver
# with selenium; no browser build is downloaded. Without apt: install both yourself (the
# browser tests are skipped, saying so, while /usr/bin/chromium or chromedriver is missing).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		$$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	else echo "no apt-get here: install Chromium and chromedriver for the browser tests"; fi

$(SAMPLE): | $(STAMP)
	$(BIN)/rfm-engine sample data/sample

# The sample is written again on every demo: the run refuses a suppression file older than
# 7 days (README: "Suppression and compliance"), and the sample's is as old as data/sample.
demo: install
	$(BIN)/rfm-engine sample data/sample
	$(BIN)/rfm-engine run --config examples/demo.toml --force

lint: install
	$(BIN)/ruff check .

# One worker per core, a test file per worker (module fixtures are built once).
test: lint
	$(BIN)/pytest -q -n auto --dist loadfile

# 1M, 10M and 50M heavy-tailed lines: every contender (benchmarks/README.md), ~1 hour.
bench: install
	$(BIN)/python benchmarks/run.py

# Opt-in: the weekly run on 200M lines (a 3.6 GB file, generated once, ~20 min) under its
# default memory limit, beside the bare DuckDB aggregation.
bench-large: install
	$(BIN)/python benchmarks/run.py --sizes 200M --contenders run,duckdb \
		--output benchmarks/RESULTS-large.md

# The README's screenshots (docs/*.png), taken by the browser tests.
screenshots: install
	RFM_ENGINE_SCREENSHOTS=docs $(BIN)/pytest -q -p no:cacheprovider \
		tests/test_browser_reports.py tests/test_browser_ui.py \
		"tests/test_clv_validation.py::test_plots_are_readable"

clean:
	rm -rf out data/sample .pytest_cache .ruff_cache
