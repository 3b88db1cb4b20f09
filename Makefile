# The two set-up commands of the README. Each creates .venv with the machine's python3 if it is
# missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

DEMO := demo-output

demo: $(VENV)/.installed
	$(BIN)/pivotal auction run examples/seed_vcg_3x4.json
	$(BIN)/pivotal auction compare examples/seed_vcg_3x4.json --order A,B,C
	$(BIN)/pivotal market run examples/market_seed.json
	$(BIN)/pivotal negotiate run --scenario truck-example
	@mkdir -p $(DEMO)
	$(BIN)/pivotal auction run examples/seed_vcg_3x4.json -o $(DEMO)/auction.json
	$(BIN)/pivotal market run examples/market_seed.json -o $(DEMO)/market.json
	$(BIN)/pivotal market generate --producers 6 --buyers 5 --seed 1 -o $(DEMO)/market-generated-input.json
	$(BIN)/pivotal market run $(DEMO)/market-generated-input.json -o $(DEMO)/market-generated.json
	$(BIN)/pivotal negotiate run --scenario truck-example -o $(DEMO)/negotiation.json
	@echo "reports (open index.html in a browser):"
	@for r in auction market market-generated negotiation; do \
		$(BIN)/pivotal report $(DEMO)/$$r.json -o $(DEMO)/$$r; done
	@echo
	@echo "pivotal is installed in $(VENV): run '. $(VENV)/bin/activate' in this folder (or call"
	@echo "$(VENV)/bin/pivotal) to use the 'pivotal' commands of the README."

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/mypy

# The browser tests render the reports in headless Chromium or Chrome when one is installed (or
# PIVOTAL_BROWSER names one) and are skipped, with one line saying how to enable them, when none
# is. `make test` never installs anything outside .venv; `make chromium` installs the Debian
# package when asked (root only; it says what it installs and stops before upgrading packages).
chromium:
	@scripts/install-chromium

# two pytest workers (pytest-xdist; the CI machine has two cores, and a fixed count does not
# depend on how a container reports its CPUs), each test file on one worker: its module
# fixtures (a served coordinator, a finished negotiation) are built once
test: lint
	$(BIN)/pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(DEMO)
