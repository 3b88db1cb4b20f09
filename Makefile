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

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/mypy

# the report tests render pages in headless Chromium (Debian package 'chromium')
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: lint chromium
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(DEMO)
