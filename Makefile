# Every target creates .venv on first use and installs the project (with all extras) into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[timm,ray,compress,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rbl demo --out runs/demo

# The report test renders HTML in headless Chromium: as root with apt-get (CI), install Debian's chromium if missing;
# without it that one test is skipped with a message.
# The whole suite runs with the machine's own CPU kernels, then the tests marked `numerics` (results that depend on
# float kernels) again with ATen's kernels for each capability below that this machine honours, so that a kernel
# difference cannot hide behind the machine's own instruction set.
NUMERICS_CAPABILITIES := avx2 default

test: $(STAMP)
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium (headless browser for tests/test_reports.py)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			|| echo "warning: could not install chromium; the headless-browser report test will be skipped"; \
	fi
	$(BIN)/python -m pytest -q
	@for cap in $(NUMERICS_CAPABILITIES); do \
		got=$$(ATEN_CPU_CAPABILITY=$$cap $(BIN)/python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"); \
		if [ "$$got" != "$$(echo $$cap | tr a-z A-Z)" ]; then echo "numerics tests: no $$cap kernels here, skipped"; continue; fi; \
		echo "numerics tests with ATEN_CPU_CAPABILITY=$$cap"; \
		ATEN_CPU_CAPABILITY=$$cap $(BIN)/python -m pytest -q -m numerics || exit 1; \
	done

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check robustbench_local attacks corruptions ood reports tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
