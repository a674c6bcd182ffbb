import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
_cuda_results = {"passed": 0, "failed": 0, "skipped": 0, "failures": []}


def pytest_runtest_logreport(report):
    if "cuda" not in report.keywords or report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    outcome = "passed" if report.passed else "failed" if report.failed else "skipped"
    _cuda_results[outcome] += 1
    if report.failed:
        _cuda_results["failures"].append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """On a GPU machine, record the CUDA tests' outcome (GPU, torch, date, result)."""
    if not torch.cuda.is_available() or _cuda_results["passed"] + _cuda_results["failed"] == 0:
        return
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    name = torch.cuda.get_device_name(0)
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpu": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "commit": commit,
        **_cuda_results,
    }
    out = Path(os.environ.get("LGANS_GPU_RECORD_DIR", ROOT / "benchmarks" / "results"))
    out.mkdir(parents=True, exist_ok=True)
    slug = name.replace(" ", "-").lower()
    (out / f"gpu-tests-{slug}-{datetime.date.today()}.json").write_text(json.dumps(record, indent=2) + "\n")
