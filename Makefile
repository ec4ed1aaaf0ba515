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

# The report test renders HTML in headless Chromium: as root with apt-get (CI), install Debian's chromium if missing;
# without it that one test is skipped with a message.
test: $(STAMP)
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium (headless browser for tests/test_reports.py)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			|| echo "warning: could not install chromium; the headless-browser report test will be skipped"; \
	fi
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check robustbench_local attacks corruptions ood reports tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
