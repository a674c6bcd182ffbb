"""docs/images.md stays true: every command and the Python example on it run here (with a tiny budget)."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightning_gans.cli import sample

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "images.md").read_text()
TINY = ["budget_steps=4", "callbacks.metrics.every_n_steps=0", "callbacks.metrics.kid_subsets=2",
        "callbacks.checkpoint.every_n_train_steps=2", "callbacks.samples.every_n_steps=2", "logger=none",
        "trainer.enable_progress_bar=false"]


def commands(tool: str) -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC, flags=re.S)
    return [shlex.split(line)[1:] for b in blocks for line in b.splitlines() if line.startswith(tool + " ")]


def train(args, run_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "lightning_gans.train", *args, *TINY, f"hydra.run.dir={run_dir}"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=run_dir.parent)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every lgans-train command of the page, run once: [(arguments, finished process, run dir)]."""
    root, out = tmp_path_factory.mktemp("docs"), []
    for i, args in enumerate(commands("lgans-train")):
        run_dir = root / f"run{i}"
        out.append((args, train(args, run_dir), run_dir))
    return out


def test_the_page_shows_the_commands_it_describes():
    assert [a[0] for a in commands("lgans-train")][:2] == ["experiment=digits_cond", "experiment=digits"]
    assert len(commands("lgans-sample")) >= 2


def test_every_training_command_runs(trained):
    for args, p, run_dir in trained:
        if any(a.startswith("callbacks.metrics.inception_weights=/path/") for a in args):
            # no Inception weights here: the run must stop before training, naming the argument
            assert p.returncode != 0 and "metrics.inception_weights: no file at /path/" in p.stderr
            assert not (run_dir / "checkpoints").exists()
            continue
        assert p.returncode == 0, p.stderr[-3000:]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        for key in ("frechet_distance", "kid", "precision", "recall", "density", "coverage"):
            assert isinstance(metrics[key], float), (args, key)
        assert ("class_accuracy" in metrics) == ("experiment=digits_cond" in args)
        if "data.fraction=0.1" in args:
            assert metrics["config"]["model"]["augment"] == ["translation", "cutout", "color"]


def test_every_sampling_command_and_the_python_example_run(trained, tmp_path, monkeypatch):
    run_dir = next(d for args, _, d in trained if args[0] == "experiment=digits_cond")
    monkeypatch.chdir(tmp_path)
    for args in commands("lgans-sample"):
        sample.main([a.replace("RUN_DIR", str(run_dir)) for a in args] + ["--no-progress"])
    assert np.load("samples.npz")["x"].shape == (10000, 1, 8, 8)
    assert len(list(Path("pngs").glob("*_class[037].png"))) == 100 and Path("grid.png").is_file()
    code = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)[0]
    scope = {"RUN_DIR": run_dir}
    exec(code, scope)
    assert tuple(scope["images"].shape) == (10, 1, 8, 8)
