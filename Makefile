# The commands the README shows. `make run` and `make test` each install what they need first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
INDEX  ?= var/index/demo

.PHONY: install models index run test test-unit eval-shared lint clean
SHARED ?= ../shared/corpora

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## Python packages (llama-cpp-python compiles once, then pip's cache serves it)

models: install  ## Assemble and verify the offline models (see `guichet models list`)
	$(BIN)/guichet models fetch

index: models  ## Build (or update) the demo corpus index
	$(BIN)/guichet ingest corpora/demo --index $(INDEX)

run: index  ## Install everything and talk to the bot on the demo corpus
	$(BIN)/guichet chat --index $(INDEX)

test: models  ## Install everything and run all tests, end-to-end ones with the real models included
	$(BIN)/python -m pytest

eval-shared: models  ## The slower job: index ../shared/corpora, run the 80-case set, gate on it
	$(BIN)/guichet ingest $(SHARED) --index var/index/shared --exclude SOURCE.md --exclude 'README*'
	$(BIN)/guichet eval run --dataset eval/datasets/service-public.jsonl --index var/index/shared \
		--out var/eval/service-public

test-unit: install  ## Fast tests with fakes only
	$(BIN)/python -m pytest -m "not e2e"

lint: install
	$(BIN)/ruff check bot ingestion eval guichet tests tools
	$(BIN)/ruff format --check bot ingestion eval guichet tests tools

clean:
	rm -rf var $(VENV)
