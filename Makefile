# Two commands on a fresh machine: `make run` and `make test`. Every target creates .venv on first use.
# `make test-fast` leaves out the tests marked slow; `make lint` runs ruff on everything and mypy on sim/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run app test test-fast lint bench bench-compare clean
APP_PORT ?= 8501

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# bytecode for the model's own modules, as pip writes it for the packages: where PYTHONDONTWRITEBYTECODE is set
	@# (as in CI), every process would otherwise compile sim/ from source (~0.3 s each)
	$(BIN)/python -m compileall -q sim
	@echo "Compiling the model's loops once (numba caches them under sim/__pycache__; about a minute)"
	@tmp=$$(mktemp -d) && $(BIN)/python run_sim.py run scenarios/baseline.yaml --replications 1 \
		--set horizon_weeks=2 --no-report --quiet --out $$tmp/warm-up > /dev/null && rm -rf $$tmp
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python run_sim.py

app: $(STAMP)   # the web app (sim/app; settings in .streamlit/config.toml), on this machine only; APP_PORT=8600 make app for another port
	@echo "Web app: http://127.0.0.1:$(APP_PORT)  (Ctrl-C stops it)"
	$(BIN)/python -m streamlit run sim/app/page.py --server.address 127.0.0.1 --server.port $(APP_PORT)

test: $(STAMP)   # on every core (pytest-xdist); every test is independent of the others' order and process
	$(BIN)/python -m pytest -q -n auto

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow"

lint: $(STAMP)   # both tools run, and the target fails if either found something
	$(BIN)/ruff check .; ruff=$$?; $(BIN)/mypy; mypy=$$?; exit $$(( ruff || mypy ))

bench: $(STAMP)
	$(BIN)/python -m compileall -q sim
	$(BIN)/python benchmarks/bench.py

bench-compare: $(STAMP)   # compare over the six scenarios: sequential vs --jobs 2 vs Dask (~15 min on 2 cores)
	$(BIN)/python benchmarks/compare_executors.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache sim/__pycache__/numba-cache-*
