# Headroom: install into .venv (with Debian's prometheus), then demo, test or bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# guidellm, for the side-by-side load generator benchmark only: its own environment (it needs torch and transformers)
GUIDELLM_VENV := .venv-guidellm
GUIDELLM_PINS := 'torch==2.13.0' 'guidellm==0.8.1'
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := prometheus prometheus-alertmanager python3-venv nodejs npm chromium chromium-driver
NODE_PINS := '@kubernetes-models/prometheus-operator@6.0.0' '@kubernetes-models/keda@2.0.0'

.PHONY: install demo lint test test-fast bench image clean

install: $(VENV)/.installed

# System packages first (only what is missing), then the Python environment.
$(VENV)/.installed: pyproject.toml
	@missing=""; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v amtool >/dev/null || missing="$$missing prometheus-alertmanager"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	# prometheus-operator's and KEDA's CRD schemas as published on npm: the tests validate the custom resources against them
	npm install --silent --no-audit --no-fund --no-save --prefix $(VENV)/node $(NODE_PINS)
	@touch $@

demo: install
	$(BIN)/headroom up --demo --autoscale --replicas 1 --port 0 --prometheus-port 0 --console-port 0

# the unit tests: mostly CPU-bound, but a fifth of their time waits on sockets and subprocesses (the hostile-client
# suites, promtool), so three workers that steal each other's queued tests keep two cores busy (`python -m bench
# test-suite`: 149 s against 182 s with two workers and fixed shares); the integration tests wait on real processes
# and run two at a time, the two live tests that time the autoscaled fleet on one worker (xdist_group); both phases
# run even when the first fails
UNIT_WORKERS ?= 3
UNIT_TESTS = -m "not integration" -n $(UNIT_WORKERS) --dist worksteal
WORKERS ?= 2
# lint and format first (seconds): a finding fails the run, after the tests have run too
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/python -m pytest -q $(UNIT_TESTS) || status=1; \
	$(BIN)/python -m pytest -q -m integration -n $(WORKERS) --dist loadgroup || status=1; \
	exit $$status

# the inner loop: everything but the tests that start real processes (Prometheus, emulators, the console)
test-fast: install
	$(BIN)/python -m pytest -q $(UNIT_TESTS)

# Headroom's image (docs/kubernetes.md); BUILD may be `buildah bud` where podman has no runtime
BUILD ?= podman build
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	$(BUILD) -f Containerfile -t ghcr.io/headroom-dev/headroom:$(VERSION) .

bench: install $(GUIDELLM_VENV)/.installed
	@missing=""; command -v nginx >/dev/null || missing="$$missing nginx"; command -v wrk >/dev/null || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then echo "installing Debian packages for the gateway's benchmark:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	$(BIN)/python -m bench

$(GUIDELLM_VENV)/.installed:
	$(PYTHON) -m venv $(GUIDELLM_VENV)
	$(GUIDELLM_VENV)/bin/pip install -q --upgrade pip
	$(GUIDELLM_VENV)/bin/pip install -q $(GUIDELLM_PINS)
	@touch $@

clean:
	rm -rf $(VENV) $(GUIDELLM_VENV) .run build *.egg-info
