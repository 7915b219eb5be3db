# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

.PHONY: run test env lock lint mlflow-ui serve train bench clean notebooks

$(BIN)/recsys: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

env: $(BIN)/recsys  ## create .venv with the locked dependencies

run: env  ## train on The Complete Journey, register + promote, then serve on 127.0.0.1:8000
	$(BIN)/recsys retrain --config configs/completejourney.yaml
	$(BIN)/recsys serve --demo

serve: env  ## serve the current champion on 127.0.0.1:8000 without retraining
	$(BIN)/recsys serve --demo

train: env  ## train + promote on The Complete Journey (no server)
	$(BIN)/recsys retrain --config configs/completejourney.yaml

bench: env  ## offline quality of every baseline and the ranker (its time: docs/benchmarks/quality.md)
	$(BIN)/python benchmarks/quality.py

test: env  ## the whole test suite (real-data tests skip without ../shared/data)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: env
	$(BIN)/ruff check recsys training serving tests benchmarks

mlflow-ui: env  ## MLflow UI on the local store
	$(BIN)/recsys mlflow-ui

notebooks: env  ## run notebooks/*.ipynb top to bottom on the .venv kernel, with times
	$(BIN)/python notebooks/run.py

lock:  ## re-resolve requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
