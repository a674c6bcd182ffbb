# lightning-gans: `make train` installs everything and runs the default
# experiment; `make test` installs everything and runs the test suite.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SOURCES := setup.py pyproject.toml $(wildcard csrc/*.h csrc/*.cpp csrc/cpu/* csrc/cuda/*)

.PHONY: install test train bench bench-smoke gpu-check clean

# The extension builds against the installed torch (no build isolation), so
# torch and the build tools go in first. The stamp rebuilds only on changes.
.install.stamp: $(SOURCES)
	$(PIP) install -q torch setuptools wheel ninja
	$(PIP) install -q --no-build-isolation -e ".[test]"
	$(PYTHON) -c "import lightning_gans as lg; assert lg.extension_available(), 'native extension failed to load'"
	touch $@

install: .install.stamp

test: install
	$(PYTHON) -m pytest -q

train: install
	lgans-train

bench: install
	lgans-bench --json benchmarks/results/cpu_latest.json --plot benchmarks/results/cpu_latest.png \
		--md benchmarks/results/cpu_latest.md

bench-smoke: install
	lgans-bench --quick --json /tmp/lgans-bench-smoke.json

# First GPU run: build for sm_90, CUDA + tile-emulation tests, CUDA benchmarks
# -> benchmarks/results/gpu_<date>.{md,json,png}. Fails with one line without a GPU.
gpu-check:
	bash scripts/gpu_check.sh

clean:
	rm -rf build .install.stamp lightning_gans/_C*.so *.egg-info
