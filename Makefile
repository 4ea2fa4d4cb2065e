# Two entry points: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench fuzz soak fleet-test sysdeps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo needs only the core (numpy, click, pyserial): the shipped models run on numpy.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

# The test plugin (tests/plugins/frugalai_testplugin) is installed like any third-party plugin:
# tests/test_plugins.py checks that frugalai finds its backend, uplink and codec by entry point.
$(VENV)/.test-installed: pyproject.toml tests/plugins/frugalai_testplugin/pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[all]'
	$(PIP) install --no-deps -e tests/plugins/frugalai_testplugin
	@touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/frugalai demo

sysdeps:
	scripts/install-sysdeps

lint: $(VENV)/.test-installed
	$(BIN)/ruff check frugalai tests benchmarks
	$(BIN)/mypy

test: sysdeps $(VENV)/.test-installed lint
	@if [ -f firmware_bridge/Makefile ]; then $(MAKE) -C firmware_bridge test; fi
	$(BIN)/python -m pytest

bench: $(VENV)/.test-installed
	@for s in benchmarks/*.py; do case $$s in */fuzz.py|*/soak.py) continue;; esac; \
		echo "== $$s"; $(BIN)/python $$s || exit 1; done

# Not part of `make test`: 10^6 value-level examples per decoder (minutes to an hour).
fuzz: $(VENV)/.test-installed
	nice -n 10 $(BIN)/python benchmarks/fuzz.py

# Not part of `make test`: SIGKILLs, a broker outage, full disks and a long compressed run
# against the real daemon (`SOAK_ARGS=--quick` for a short one).
soak: sysdeps $(VENV)/.test-installed
	nice -n 10 $(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

# issue 19: 50 real gateway processes on one Mosquitto (ACLs, canary rollout, broker restart);
# writes benchmarks/results/fleet.{json,md}. `make test` runs the same scenario with 5.
fleet-test: sysdeps $(VENV)/.test-installed
	nice -n 10 $(BIN)/python benchmarks/fleet_scale.py --gateways 50

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
