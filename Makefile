# The commands the README shows. `make run` and `make test` each install what they need first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
INDEX  ?= var/index/demo

.PHONY: install models llama-server index run serve browser jambonz-spec speech-engine database-server test test-slow test-unit shared-index eval-gate eval-test eval-dev verifier verifier-data loadcheck soak lint clean
SHARED ?= ../shared/corpora
APT_CHROMIUM := apt-get install -y -q chromium chromium-driver >/dev/null
APT_NODE := apt-get install -y -q nodejs npm >/dev/null
APT_SPEECH := apt-get install -y -q espeak-ng >/dev/null
APT_POSTGRES := apt-get install -y -q postgresql >/dev/null

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## Python packages (llama-cpp-python compiles once, then pip's cache serves it)

models: install  ## Assemble and verify the offline models, the phone's speech recognition too (`guichet models list`)
	$(BIN)/guichet models fetch --speech

llama-server: install  ## llama.cpp's server for GUICHET_LLM_BACKEND=llama_server, compiled once from the binding's sources (~4 min)
	$(BIN)/guichet models build-server

index: models  ## Build (or update) the demo corpus index
	$(BIN)/guichet ingest corpora/demo --index $(INDEX)

run: index  ## Install everything and talk to the bot on the demo corpus
	$(BIN)/guichet chat --index $(INDEX)

serve: index  ## The HTTP service and the chat widget on the demo corpus: open http://127.0.0.1:8000/demo
	GUICHET_INDEX_DIR=$(INDEX) $(BIN)/guichet serve

browser:  ## Debian's Chromium for the widget's browser tests (apt, as root)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { $(APT_CHROMIUM) || { apt-get update -q && $(APT_CHROMIUM); }; }; } \
		|| { echo "Install Chromium first: sudo apt-get install chromium chromium-driver"; exit 1; }

jambonz-spec: tests/jambonz/node_modules/.installed  ## jambonz's own verb validator, for the phone tests (npm)

tests/jambonz/node_modules/.installed: tests/jambonz/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && { $(APT_NODE) || { apt-get update -q && $(APT_NODE); }; }; } \
		|| { echo "Install Node.js and npm first: sudo apt-get install nodejs npm"; exit 1; }
	npm ci --prefix tests/jambonz --no-audit --no-fund --silent
	touch $@

speech-engine:  ## Debian's espeak-ng, the speech service's synthesizer (apt, as root)
	@command -v espeak-ng >/dev/null || { [ "$$(id -u)" = 0 ] && { $(APT_SPEECH) || { apt-get update -q && $(APT_SPEECH); }; }; } \
		|| { echo "Install espeak-ng first: sudo apt-get install espeak-ng"; exit 1; }

database-server:  ## Debian's PostgreSQL, for the tests that run the state on a real server (apt, as root)
	@{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } \
		|| { [ "$$(id -u)" = 0 ] && { $(APT_POSTGRES) || { apt-get update -q && $(APT_POSTGRES); }; }; } \
		|| { echo "Install PostgreSQL first: sudo apt-get install postgresql"; exit 1; }

test: models llama-server browser jambonz-spec speech-engine database-server  ## Install everything and run the tests, end-to-end ones with the real models included
	$(BIN)/python -m pytest -m "not slow"

test-slow: models  ## The minutes-long end-to-end runs (benchmark, a whole question set): CI runs them
	$(BIN)/python -m pytest -m slow

shared-index: models  ## Index ../shared/corpora (incremental; every core: nothing serves beside this build)
	GUICHET_INGEST_THREADS=0 $(BIN)/guichet ingest $(SHARED) --index var/index/shared --exclude SOURCE.md --exclude 'README*'

eval-gate: shared-index  ## The release gate (CI runs it): the shared corpus's dev set against eval/gate.yaml, whose floors are set on dev
	$(BIN)/guichet eval run --dataset eval/datasets/dev/shared.jsonl --index var/index/shared --out var/eval/gate-shared

eval-test: shared-index index  ## The frozen held-out split test-2, on both corpora: once, at the end of a round, read as totals
	$(BIN)/guichet eval run --dataset eval/datasets/test2/shared.jsonl --index var/index/shared --out var/eval/test2-shared --no-gate
	$(BIN)/guichet eval run --dataset eval/datasets/test2/demo.jsonl --index $(INDEX) --out var/eval/test2-demo --no-gate

eval-dev: shared-index index  ## The dev split, to tune on and read case by case
	for set in shared shared-b; do $(BIN)/guichet eval run --dataset eval/datasets/dev/$$set.jsonl --index var/index/shared --out var/eval/dev-$$set --no-gate || exit 1; done
	for set in demo demo-b; do $(BIN)/guichet eval run --dataset eval/datasets/dev/$$set.jsonl --index $(INDEX) --out var/eval/dev-$$set --no-gate || exit 1; done

verifier-data: shared-index index llama-server  ## The verifier's training questions, written by the local model from both indexes (resumable, ~2 h)
	GUICHET_LLM_BACKEND=llama_server GUICHET_LLM_SLOTS=4 $(BIN)/guichet models verifier-data --parallel 4

verifier: models  ## Train the verifier from training/data (its pairs are rebuilt from the indexes if missing); writes models/verifier
	$(BIN)/guichet models train-verifier

test-unit: install jambonz-spec database-server  ## Fast tests with fakes only
	$(BIN)/python -m pytest -m "not e2e"

loadcheck: index llama-server  ## 2x and 10x the capacity, then a fixed saturating load, in process and on llama-server; var/loadcheck/
	$(BIN)/python tools/loadcheck.py --index $(INDEX) --configurations llama_cpp,llama_server:4
	$(BIN)/python tools/loadcheck.py --index $(INDEX) --configurations llama_cpp,llama_server:2,llama_server:4 --saturation 8

lint: install  ## ruff (lint and format), mypy --strict on the answer path, the engines and the speech protocol, the import contracts
	$(BIN)/ruff check bot ingestion eval guichet training tests tools
	$(BIN)/ruff format --check bot ingestion eval guichet training tests tools
	$(BIN)/mypy --strict bot/answer bot/engines bot/language bot/text.py bot/phone/listening.py
	$(BIN)/lint-imports

clean:
	rm -rf var $(VENV)

soak: index  ## 30 minutes at the capacity limit, web + phone + staff traffic; memory, descriptors, statuses in var/soak/
	$(BIN)/python -m tools.soak --index $(INDEX)
