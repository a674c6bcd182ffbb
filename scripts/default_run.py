"""Time the default run (`lgans-train` with no arguments) and record it with where and how it ran.

    python scripts/default_run.py            # -> benchmarks/results/default_run.{json,md}

The README quotes the wall time from these files (tests/test_figures.py checks that it does).
Run it on an idle machine: the record keeps the load average before and after, and says "idle"
only when the 1-minute load at the start was below 0.5.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()


def main() -> None:
    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in sh("lscpu").splitlines() if ln.startswith("Model name")),
               platform.processor())
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        load0 = os.getloadavg()[0]
        t0 = time.time()
        p = subprocess.run([sys.executable, "-m", "lightning_gans.cli.train", f"hydra.run.dir={run_dir}"],
                           cwd=tmp, capture_output=True, text=True)
        wall = time.time() - t0
        if p.returncode != 0:
            sys.exit(f"the default run failed:\n{p.stderr[-3000:]}")
        metrics = json.loads((run_dir / "metrics.json").read_text())
    record = {
        "command": "lgans-train", "wall_s": round(wall, 1), "train_s": metrics.get("elapsed_s"),
        "metrics": {k: metrics[k] for k in ("modes_covered", "high_quality_fraction", "reverse_kl")},
        "commit": sh("git", "rev-parse", "--short", "HEAD"), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "load_avg_1m_start": round(load0, 2), "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    record["idle"] = record["load_avg_1m_start"] < 0.5
    (OUT / "default_run.json").write_text(json.dumps(record, indent=1) + "\n")
    m = record["metrics"]
    (OUT / "default_run.md").write_text(
        "# The default run\n\n"
        f"`{record['command']}` (no arguments) took **{record['wall_s']} s** of wall time "
        f"({record['train_s']} s in `trainer.fit`) on {record['machine']['cpu']} ({record['machine']['cores']} cores), "
        f"torch {record['machine']['torch']}, at commit {record['commit']} on {record['date']} UTC; load average "
        f"{record['load_avg_1m_start']} at the start and {record['load_avg_1m_end']} at the end "
        f"({'an idle machine' if record['idle'] else 'NOT an idle machine: other work was running'}).\n\n"
        f"Result: {m['modes_covered']}/8 modes, {100 * m['high_quality_fraction']:.1f} % high quality, "
        f"reverse KL {m['reverse_kl']:.3f}. Written by `python scripts/default_run.py`.\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
