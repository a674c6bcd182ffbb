# lightning-gans: `make train` installs everything and runs the default
# experiment; `make test` installs everything and runs the test suite.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SOURCES := setup.py pyproject.toml $(wildcard csrc/*.h csrc/*.cpp csrc/cpu/* csrc/cuda/*)

.PHONY: install test train bench bench-smoke gpu-check clean mutate

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

# Mutation testing (docs/testing.md): mutmut 3 over each area, with the fast tests that cover it.
# Each area runs in its own scratch copy (MUTATE_DIR/<area>) so the working tree is never mutated;
# one worker, threads off (OpenMP is not fork-safe: a forked mutant would hang in the kernels).
# Not in CI (about an hour on 2 cores); CI runs the tests it produced. `make mutate-losses` runs one area.
# Not under build/: `make clean` removes build/ (and another engineer may run it mid-run).
MUTATE_DIR ?= /tmp/lgans-mutate
# toys is left out of the default: its one function, toy_metrics, is decorated (@torch.no_grad()) and
# mutmut 3 does not mutate decorated functions (0 mutants); docs/testing.md lists hand mutants instead.
MUTATE_AREAS ?= losses penalties training kernels
# MUTANTS: mutmut name patterns (fnmatch) to run only those, e.g. the step logic of training:
#   make -o install mutate-training MUTANTS='lightning_gans.training.loop.*training_step* ...'
MUTANTS ?=
MUT_SRC_losses := lightning_gans/losses
MUT_TESTS_losses := tests/test_loss_oracles.py tests/test_losses.py tests/test_losses_api.py tests/test_theory.py tests/test_theory_every_loss.py
MUT_SRC_penalties := lightning_gans/training/penalties.py
MUT_TESTS_penalties := tests/test_regularizers.py tests/test_penalties_oracle.py
MUT_SRC_toys := lightning_gans/metrics/toys.py
MUT_TESTS_toys := tests/test_metrics.py tests/test_toy_metrics_oracle.py
MUT_SRC_training := lightning_gans/training/module.py lightning_gans/training/loop.py
MUT_TESTS_training := tests/test_module.py tests/test_module_hooks.py tests/test_conditional.py tests/test_regularizers.py tests/test_module_steps.py tests/test_module_flow.py tests/test_module_loop.py
MUT_SRC_kernels := lightning_gans/kernels/ops.py
MUT_TESTS_kernels := tests/test_ops.py tests/test_ops_errors.py tests/test_all_pairs_factorised.py tests/test_loss_oracles.py tests/test_ops_paths.py

mutate: $(addprefix mutate-,$(MUTATE_AREAS))
	@for a in $(MUTATE_AREAS); do echo "== $$a"; cat $(MUTATE_DIR)/$$a/score.txt; done

mutate-%: install
	$(PIP) install -q "mutmut>=3.3,<4"  # = the dev extra's pin; not `-e .[dev]`, which would rebuild the extension
	rm -rf $(MUTATE_DIR)/$* && mkdir -p $(MUTATE_DIR)/$*
	git ls-files -z | xargs -0 cp -P --parents -t $(MUTATE_DIR)/$* 2>/dev/null || true
	cp lightning_gans/_C*.so $(MUTATE_DIR)/$*/lightning_gans/
	{ printf '[mutmut]\nalso_copy=lightning_gans\n  tests\n  conf\n  docs\npytest_add_cli_args=-p\n  no:cacheprovider\n  -x\n  -q\n'; \
	  printf 'source_paths='; for f in $(MUT_SRC_$*); do printf '\n  %s' $$f; done; \
	  printf '\npytest_add_cli_args_test_selection='; for f in $(MUT_TESTS_$*); do printf '\n  %s' $$f; done; \
	  printf '\n'; } > $(MUTATE_DIR)/$*/setup.cfg
	cd $(MUTATE_DIR)/$* && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTHON) -m mutmut run --max-children 1 $(MUTANTS) > run.log 2>&1 || true
	cd $(MUTATE_DIR)/$* && $(PYTHON) -m mutmut results > results.txt 2>&1; $(PYTHON) -m mutmut export-cicd-stats > /dev/null 2>&1; \
	  $(PYTHON) -c "import json; s = json.load(open('mutants/mutmut-cicd-stats.json')); \
	  k = s['killed'] + s['timeout']; t = k + s['survived'] + s['suspicious']; \
	  print(f'$*: {k}/{t} killed ({100 * k / max(t, 1):.1f}%), survived {s[\"survived\"]}, no tests {s[\"no_tests\"]}')" \
	  | tee score.txt

