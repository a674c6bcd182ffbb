#!/usr/bin/env bash
# First run on a GPU (`make gpu-check`, ~7 minutes on one H100/H200; each step has a
# timeout: build 6, tests 5, benchmarks 3 + 1 minutes): build the
# extension with CUDA for sm_90 only, run the CUDA tests and the tile emulation
# tests, benchmark the CUDA kernels (the tiled all-pairs kernel and, for
# comparison, the legacy one), and write benchmarks/results/gpu_<date>.{md,json,png}
# with the device, driver, torch version and commit. Needs only torch, nvcc and
# this repository (no network; no pip installs).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
die() { echo "gpu-check: $*" >&2; exit 1; }

"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
  || die "no CUDA GPU visible to torch (torch.cuda.is_available() is False); run this on a GPU machine"

day=$(date -u +%Y-%m-%d)
out=benchmarks/results
mkdir -p "$out"
base="$out/gpu_$day"
status=0

# 1. Build: sm_90 only (the full default list is for CI/wheels); all cores.
echo "gpu-check: building the extension with CUDA (TORCH_CUDA_ARCH_LIST=9.0)"
if ! TORCH_CUDA_ARCH_LIST=9.0 LIGHTNING_GANS_CUDA=1 MAX_JOBS=$(nproc) timeout 360 \
    "$PY" setup.py build_ext --inplace > "$base.build.log" 2>&1; then
  tail -20 "$base.build.log" >&2
  die "build failed (log: $base.build.log)"
fi
"$PY" -c "import lightning_gans as lg, json; i = lg.build_info(); assert i.get('cuda'), i; print(json.dumps(i))" \
  > "$base.build_info.json" || die "the built extension did not load with CUDA (see $base.build.log)"

# 2. Tests. test_tile_emulation.py is CPU-only (not marked cuda), so no -m filter.
echo "gpu-check: CUDA tests"
timeout 300 "$PY" -m pytest tests/test_ops_cuda.py tests/test_tile_emulation.py -q -rfE \
  --junitxml="$base.pytest.xml" 2>&1 | tee "$base.pytest.log" | tail -25
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "gpu-check: TESTS FAILED (log: $base.pytest.log)" >&2; status=1; }

# 3. Benchmarks (lightning_gans/cli/bench; `lgans-bench` is the same entry point).
bench() { timeout "$1" "$PY" -c "import sys; from lightning_gans.cli.bench import main; sys.exit(main(sys.argv[1:]))" "${@:2}"; }
echo "gpu-check: benchmark (tiled all-pairs kernel)"
bench 180 --device cuda --dtypes float32,bfloat16 --sizes 1M,64M --pair-sizes 4K,16K,64K \
  --reps 5 --budget 3 --json "$base.json" --md "$base.md" --plot "$base.png" > "$base.bench.log" 2>&1 \
  || { echo "gpu-check: benchmark failed (log: $base.bench.log)" >&2; status=1; }
echo "gpu-check: benchmark (legacy all-pairs kernel, for comparison)"
LIGHTNING_GANS_CUDA_ALL_PAIRS=legacy bench 60 --device cuda --dtypes float32 --ops relativistic_all_pairs \
  --impls fused --passes fwd,fwd+bwd --pair-sizes 4K,16K,64K --reps 5 --budget 3 \
  --json "$base.allpairs_legacy.json" > "$base.bench_legacy.log" 2>&1 \
  || { echo "gpu-check: legacy benchmark failed (log: $base.bench_legacy.log)" >&2; status=1; }

# 4. Provenance: device, driver, torch, commit, build info, test outcome into the JSON and the markdown.
"$PY" - "$base" "$status" <<'PYEOF'
import json, os, subprocess, sys
import torch
base, status = sys.argv[1], int(sys.argv[2])
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
info = {
    "device": torch.cuda.get_device_name(0),
    "driver": run("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader").splitlines()[:1],
    "torch": torch.__version__, "torch_cuda": torch.version.cuda,
    "commit": run("git", "rev-parse", "HEAD"), "dirty": bool(run("git", "status", "--porcelain", "--untracked-files=no")),
    "build_info": json.load(open(base + ".build_info.json")),
    "checks_passed": status == 0,
}
info["driver"] = info["driver"][0] if info["driver"] else "unknown"
data = json.load(open(base + ".json")) if os.path.exists(base + ".json") else {}
data["gpu_check"] = info
if os.path.exists(base + ".allpairs_legacy.json"):
    data["all_pairs_legacy"] = json.load(open(base + ".allpairs_legacy.json")).get("records", [])
json.dump(data, open(base + ".json", "w"), indent=1)
md = open(base + ".md").read() if os.path.exists(base + ".md") else ""
head = (f"# GPU check {base.rsplit('_', 1)[-1]}\n\n{info['device']}, driver {info['driver']}, torch {info['torch']} "
        f"(CUDA {info['torch_cuda']}), commit {info['commit']}{' (dirty)' if info['dirty'] else ''}; "
        f"checks {'passed' if status == 0 else 'FAILED'}. Legacy all-pairs records: gpu_*.allpairs_legacy.json.\n\n")
open(base + ".md", "w").write(head + md)
print(head.strip())
PYEOF
exit $status
