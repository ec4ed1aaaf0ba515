# Every target creates .venv on first use and installs the project (with all extras) into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[timm,ray,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rbl demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check robustbench_local attacks corruptions ood reports tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
