# The two quick-start commands are `make serve` and `make test`; everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint format docs bench clean

# (Re)install when pyproject.toml changes; the first run creates the virtualenv.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# swagger-ui-bundle-v2 replaced swagger-ui-bundle: both hold `swagger_ui_bundle`.
	$(BIN)/python -m pip uninstall --quiet --yes swagger-ui-bundle 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)            ## run one node (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/mediaserver serve $(ARGS)

test: $(STAMP)             ## the whole suite; pytest's "no tests collected" (5) fails too
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)             ## the gates .ci/run passes before the tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: $(STAMP)             ## regenerate docs/openapi.yaml and docs/postman_collection.json
	$(BIN)/python -m control.openapi

bench: $(STAMP)
	$(BIN)/python -m pytest tests/bench -s -q

clean:
	rm -rf $(VENV) var
