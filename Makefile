# Two commands on a fresh machine: `make run` and `make test`.
# The virtual environment is (re)installed only when pyproject.toml changes.
PYTHON ?= python3
DATA_ROOT ?= ../shared/data
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every extra the tests use: dev tools, parallel and cluster launchers, search, Parquet files,
# trackers, timm's models, the benchmark's Lightning and fastai contestants, the browser test,
# cleanlab's label issues, ONNX export checked by onnxruntime.
EXTRAS ?= dev,parallel,cluster,search,parquet,tensorboard,mlflow,timm,bench,browser,analysis,export
# The browser test's headless Chromium and its driver (tests/test_sweep_html.py), from apt as
# root where there is apt; elsewhere that test skips, in one line, and make goes on.
BROWSER := $(VENV)/.browser

.PHONY: run test test-cluster lint reproduce bench gpu-check wheel docs-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[$(EXTRAS)]'
	touch $(STAMP)

$(BROWSER): $(STAMP)
	@if command -v chromedriver >/dev/null; then touch $@; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y chromium chromium-driver \
		  || { apt-get update && apt-get install -y chromium chromium-driver; }; } \
		&& touch $@ || echo "apt-get could not install chromium: the browser test will be skipped"; \
	else echo "No chromedriver, and no apt-get as root to install it: the browser test will be skipped"; fi

run: $(STAMP)  ## train the default experiment (pass overrides with ARGS="model=cnn trainer.epochs=5")
	$(BIN)/multiclass-train $(ARGS)

# The suite in one worker process a core (at most 4), each test file in one worker: its
# module fixtures (real process groups, a killed sweep) run once.
TEST_WORKERS ?= logical --maxprocesses 4

test: $(STAMP) $(BROWSER)  ## lint (imports: layers, no cycles), then the whole test suite, on every core
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not cluster"

test-cluster: $(STAMP)  ## the tests on a real one-node Slurm (slurm-local, as root) and Ray: minutes; CI runs them
	$(BIN)/python -m pytest -p no:xdist -m cluster

reproduce: $(STAMP)  ## rerun every seed experiment whose data is in DATA_ROOT (3 seeds each)
	$(BIN)/multiclass-reproduce --data-root $(DATA_ROOT)

bench: $(STAMP)  ## the speed benchmark (about 17 minutes on 2 cores)
	$(BIN)/multiclass-bench --data-root $(DATA_ROOT)

docs-check: $(STAMP)  ## run every command README and docs/ show, and compare what it prints with the page
	$(BIN)/python docs/checks/docs_check.py

gpu-check: $(STAMP)  ## on a CUDA GPU: the workloads in fp32/bf16/fp16/compile, deterministic reruns
	$(BIN)/python -m multiclass.bench.gpu_check --data-root $(DATA_ROOT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

wheel:  ## the installable wheel, configs inside, in dist/: pip install dist/multiclass-*.whl
	rm -rf build
	$(PYTHON) -m pip wheel . --no-deps --wheel-dir dist
