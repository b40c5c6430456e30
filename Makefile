# The front door. Every target does its own set-up: on a machine with only Python >= 3.11
# and make, `make test` installs uv (into .tools/), the workspace (into .venv/) and runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_PREFERENCE := only-system
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# Put .tools/bin first on PATH, so that what the targets run (the Dockerfile consistency test
# replays `uv sync`) finds the uv installed there on a machine that had none.
export PATH := $(CURDIR)/.tools/bin:$(PATH)
RUN := $(UV) run --frozen --all-packages
PYTHON_SOURCES := $(wildcard libs services gateway tools examples deploy tests bench scripts)
TYPED_PACKAGES := $(wildcard libs/common/src/shop_common libs/testing/src/shop_testing services/*/src/*_service gateway/src/gateway tools/devstack/src/shop_devstack examples/caching/src/shop_cache_examples)
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	@echo "==> installing uv into .tools/ (uses this machine's Python; no Python download)"
	python3 -m venv .tools && .tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv) uv.lock pyproject.toml $(wildcard */pyproject.toml */*/pyproject.toml)
	@echo "==> installing the workspace into .venv/"
	$(UV) sync --all-packages --locked
	@touch $@

.PHONY: install
install: .venv/.synced ## install every workspace member and the dev tools

.PHONY: lint
lint: install ## ruff lint + format check
	@echo "==> ruff"
	$(RUN) ruff check $(PYTHON_SOURCES)
	$(RUN) ruff format --check $(PYTHON_SOURCES)

.PHONY: fmt
fmt: install ## format and autofix
	$(RUN) ruff format $(PYTHON_SOURCES)
	$(RUN) ruff check --fix $(PYTHON_SOURCES)

.PHONY: types
types: install ## mypy --strict on libs/common, libs/testing, every service and examples/caching
	@echo "==> mypy (strict)"
	$(RUN) mypy $(TYPED_PACKAGES)

.PHONY: unit
unit: install ## fast tests only (no infrastructure)
	$(RUN) pytest -m "not infra" -q $(PYTEST_ARGS)

.PHONY: pytest
pytest: install ## every test (needs PostgreSQL, Redis, RabbitMQ: see README)
	@echo "==> pytest (every suite; REQUIRE_INFRA=$${REQUIRE_INFRA:-0})"
	$(RUN) pytest --durations=15 $(PYTEST_ARGS)

.PHONY: test
test: lint types pytest ## lint + types + every test

.PHONY: proto
proto: install ## regenerate libs/protos from proto/
	$(RUN) python scripts/gen_protos.py
	$(RUN) ruff format libs/protos >/dev/null 2>&1 || true

.PHONY: up
up: install ## start the whole system as local processes (Ctrl-C or `make down` stops it)
	$(RUN) python -m shop_devstack up $(UP_ARGS)

.PHONY: down
down: install ## stop a system started by `make up`
	$(RUN) python -m shop_devstack down

.PHONY: status
status: install ## state of the running system (processes, pids, restarts)
	$(RUN) python -m shop_devstack status

.PHONY: demo
demo: install ## the narrated walkthrough through the gateway: `make up`'s system, else a running compose stack (DEMO_ARGS=--compose), else starts `make up`
	$(RUN) python -m shop_devstack.demo $(DEMO_ARGS)

.PHONY: demo-user
demo-user: install ## the user service alone: a narrated gRPC client session
	$(RUN) python -m user_service.entrypoints.demo

.PHONY: demo-system
demo-system: demo ## the same as `make demo` (kept for old notes)

LOAD_ARGS ?=
.PHONY: load
load: install ## Locust, headless, fixed time, against the running system (or the compose stack: LOAD_ARGS=--compose); ends with one JSON line
	$(RUN) python -m shop_devstack.load $(LOAD_ARGS)

.PHONY: screenshots
screenshots: install ## the browser suite against a system it starts; saves each page to docs/screenshots/*.png (the README's)
	SHOP_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(RUN) pytest tests/browser -p no:randomly -q $(PYTEST_ARGS)

.PHONY: check-deploy
check-deploy: install ## check docker-compose.yml, the Dockerfiles and deploy/k8s against the code (no Docker, no cluster)
	$(RUN) python -m shop_devstack check

.PHONY: k8s-keys
k8s-keys: install ## the dev JWT key pair for deploy/k8s/overlays/dev (git-ignored keys/; kept if present)
	$(RUN) python deploy/keys/generate_dev_keys.py deploy/k8s/overlays/dev/keys

COMPOSE_ARGS ?=
.PHONY: images-offline
images-offline: ## build the base + infrastructure images from Debian/PyPI, no registry (FORCE=1 rebuilds)
	bash deploy/offline/build-images.sh $(if $(FORCE),--force)

.PHONY: compose-up
compose-up: install ## the system in containers: engine, images (local ones when no registry answers), up --wait
	$(RUN) python -m shop_devstack.compose_stack up $(COMPOSE_ARGS)

.PHONY: compose-down
compose-down: install ## stop the compose stack: down -v, no container, network or volume left
	$(RUN) python -m shop_devstack.compose_stack down $(COMPOSE_ARGS)

.PHONY: compose-figures
compose-figures: install ## image sizes and docker stats memory of the running compose stack
	$(RUN) python -m shop_devstack.compose_stack figures $(COMPOSE_ARGS)

.PHONY: bench
bench: install ## run every benchmark (prints figures and one JSON line each)
	@command -v nginx >/dev/null && command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk; \
	  else echo "bench_gateway needs nginx (and wrk): apt-get install -y nginx-light wrk (as root)"; fi; }
	@for b in bench/bench_*.py; do echo "==> $$b"; $(RUN) python $$b || exit 1; done

.PHONY: migrate
.PHONY: dlq
dlq: install ## list a DLQ: make dlq QUEUE=payment.order-events; replay: make dlq QUEUE=... REPLAY="--all" (or REPLAY="--id <message id>")
	@if [ -n "$(REPLAY)" ]; then uv run python -m shop_common.messaging.dlq replay $(QUEUE) $(REPLAY); \
	else uv run python -m shop_common.messaging.dlq list $(QUEUE); fi

.PHONY: events-schema
events-schema: install ## regenerate docs/events/events.schema.json from the event models
	uv run python -m shop_common.messaging.schema

migrate: install ## apply the user service's migrations to DATABASE_URL
	$(RUN) python -m shop_common.migrations user_service

.PHONY: clean
clean: ## remove the virtual environments and caches
	rm -rf .venv .tools .mypy_cache .ruff_cache
