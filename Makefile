# Two entry points: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench bench-publish bench-publish-all fuzz soak fleet-test fleet-scale sysdeps clean

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

# Every benchmark but fuzz and soak, in dependency order (model_quality quotes coastal_study).
# Results go to build/benchmarks/ (never over the published figures); each script records its
# date, commit, machine and load under "meta" (benchmarks/provenance.py). `make bench-publish`
# (on a quiet machine) rewrites benchmarks/results/; BENCH_ARGS is passed to every script.
BENCH_SCRIPTS := scripts/coastal_study.py benchmarks/model_quality.py benchmarks/decoders.py \
	benchmarks/latency.py benchmarks/lora_airtime.py benchmarks/outbox.py \
	benchmarks/energy_per_inference.py benchmarks/fastpath.py benchmarks/whole_process.py \
	benchmarks/tide_block.py benchmarks/sensor_health.py \
	benchmarks/service_footprint.py benchmarks/fleet_scale.py
# BENCH_ARGS_<script> adds arguments to one script, e.g. BENCH_ARGS_energy_per_inference=
# "--window-s 3" (the longest: ~32 min at its default 10-s windows; see benchmarks/README.md).
bench: $(VENV)/.test-installed
	@$(foreach s,$(BENCH_SCRIPTS),\
		args="$(strip $(BENCH_ARGS) $(BENCH_ARGS_$(basename $(notdir $(s)))))"; \
		echo "== $(s) $$args"; t0=$$(date +%s); $(BIN)/python $(s) $$args || exit 1; \
		echo "== $(s): $$(( $$(date +%s) - t0 )) s";)

bench-publish:
	$(MAKE) bench BENCH_ARGS="--publish $(BENCH_ARGS)"

# The whole of benchmarks/results/: bench-publish, then the full fuzz and soak runs.
bench-publish-all: bench-publish
	$(MAKE) fuzz FUZZ_ARGS="--publish $(FUZZ_ARGS)"
	$(MAKE) soak SOAK_ARGS="--publish $(SOAK_ARGS)"

# Not part of `make test`: 10^6 value-level examples per decoder (minutes to an hour), then
# 10^4 hostile model cards through the CLI (issue 24; FUZZ_CARDS_ARGS="--cards N"), then 10^5
# fuzzed typed events through the collector, directly and through a real Mosquitto (issue 24;
# FUZZ_EVENTS_ARGS); --publish of FUZZ_ARGS applies to all three.
fuzz: sysdeps $(VENV)/.test-installed
	nice -n 10 $(BIN)/python benchmarks/fuzz.py $(FUZZ_ARGS)
	nice -n 10 $(BIN)/python benchmarks/fuzz_cards.py $(filter --publish,$(FUZZ_ARGS)) $(FUZZ_CARDS_ARGS)
	nice -n 10 $(BIN)/python benchmarks/fuzz_events.py $(FUZZ_EVENTS_ARGS) $(filter --publish,$(FUZZ_ARGS))

# Not part of `make test`: SIGKILLs, a broker outage, full disks and a long compressed run
# against the real daemon (`SOAK_ARGS=--quick` for a short one; `SOAK_ARGS=--publish` writes
# benchmarks/results/, like FUZZ_ARGS=--publish for fuzz).
soak: sysdeps $(VENV)/.test-installed
	nice -n 10 $(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

# issue 19: 50 real gateway processes on one Mosquitto (ACLs, canary rollout, broker restart);
# writes build/benchmarks/fleet.{json,md} (BENCH_ARGS=--publish: benchmarks/results/).
# `make test` runs the same scenario with 5.
fleet-test: sysdeps $(VENV)/.test-installed
	nice -n 10 $(BIN)/python benchmarks/fleet_scale.py --gateways 50 $(BENCH_ARGS)

# issue 27: a territory's fleet into PostgreSQL with real parts (PostgreSQL and Mosquitto started
# for the run, 1,000 simulated gateways, a collector SIGKILL, a broker restart, a 10,000 events/s
# burst, 1 % hostile messages); build/benchmarks/fleet_scale.{json,md} (BENCH_ARGS=--publish:
# benchmarks/results/). `make test` runs a small one (tests/test_central_scale.py).
fleet-scale: sysdeps $(VENV)/.test-installed
	$(BIN)/python benchmarks/central_scale.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
