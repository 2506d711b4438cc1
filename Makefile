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
	@# the packages' bytecode is written below, on the second core while numba compiles on the first (pip would
	@# write it first, one file after another: about half a minute more)
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	@# bytecode for the model's own modules: where PYTHONDONTWRITEBYTECODE is set (as in CI), every process would
	@# otherwise compile sim/ and the packages from source (~0.3 s for sim/ alone, each time)
	$(BIN)/python -m compileall -q sim
	@echo "Compiling the model's loops once (numba caches them under sim/__pycache__; about a minute)"
	@# a file that cannot be byte-compiled (none today) is only imported from source: no reason to stop
	@tmp=$$(mktemp -d) || exit 1; { $(BIN)/python -m compileall -q $(VENV)/lib > /dev/null 2>&1 || true; } & \
		bytecode=$$!; \
		$(BIN)/python run_sim.py run scenarios/baseline.yaml --replications 1 --set horizon_weeks=2 --no-report \
		--quiet --out $$tmp/warm-up > /dev/null; warmed=$$?; wait $$bytecode; rm -rf $$tmp; exit $$warmed
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
