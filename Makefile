# Every target builds the environment it needs itself: a fresh clone needs only python3 and make.
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST_ARGS ?=
# pytest-xdist processes: both cores of the CI machine
PYTEST_WORKERS ?= 2

.PHONY: install demo dev worker test lint format typecheck check clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

install: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv) ## the project's environment in .venv, exactly as locked
	$(UV) sync --frozen

demo: install ## one reviewed background job end to end on the embedded stack, then stops
	$(UV) run laneway demo

dev: install ## Temporal dev server + Web UI, OpenAI emulator and a worker; Ctrl-C stops all
	$(UV) run laneway dev

worker: install ## a worker against the configured Temporal server and provider
	$(UV) run laneway worker

test: install ## the whole test suite
	$(UV) run pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: install ## formatting and lint rules
	$(UV) run ruff format --check .
	$(UV) run ruff check .

format: install
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

typecheck: install
	$(UV) run mypy

check: lint typecheck test ## what CI runs

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
