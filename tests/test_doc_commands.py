"""Every `lgans-train` and `lgans-design` command shown in README.md and docs/ runs, with a shortened
budget, and ends with finite metrics (or, for commands that need the user's data, with the clear
error the docs promise). The other commands are run by their own tests: `lgans-bench` by
tests/test_bench.py, `lgans-sample` by tests/test_sample_cli.py, `make` targets by CI."""
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHORT = ["trainer.max_steps=30", "callbacks.metrics.every_n_steps=0", "callbacks.samples.every_n_steps=1000",
         "logger=none", "trainer.enable_progress_bar=false"]


def commands(tool: str) -> list[tuple[str, str]]:
    """(file, command) for every line of a ```bash block that starts with `tool`."""
    found = []
    for md in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", md.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()  # the docs comment commands after two spaces
                if line.startswith(tool + " ") or line == tool:
                    found.append((md.name, line))
    return found


def run(argv: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def unique(found):  # a command shown in several pages runs once
    return sorted({c: w for w, c in found}.items(), key=lambda cw: cw[0])


TRAIN = [(w, c) for c, w in unique(commands("lgans-train"))]
DESIGN = [(w, c) for c, w in unique(commands("lgans-design"))]


def test_the_docs_show_commands():
    assert len(TRAIN) >= 8 and DESIGN


@pytest.mark.slow
@pytest.mark.parametrize("where, command", TRAIN, ids=[c for _, c in TRAIN])
def test_documented_lgans_train_command(tmp_path, where, command):
    args = shlex.split(command)[1:]
    multirun = "-m" in args or "--multirun" in args
    if "--cfg" in args:  # prints the config and exits
        p = run(["-m", "lightning_gans.cli.train", *args], tmp_path)
        assert p.returncode == 0 and "loss:" in p.stdout, p.stderr[-2000:]
        return
    out = tmp_path / "out"
    args = [a for a in args if not a.startswith(("hydra.run.dir", "hydra.sweep.dir"))]
    args += [f"hydra.sweep.dir={out}" if multirun else f"hydra.run.dir={out}", *SHORT]
    if multirun:  # the documented sweep, one seed per loss to keep it short
        args = [re.sub(r"^seed=[\d,]+$", "seed=0", a) for a in args]
    p = run(["-m", "lightning_gans.cli.train", *args], tmp_path)
    user_files = [a.split("=", 1)[1] for a in args if a.split("=", 1)[0] in ("data.root", "callbacks.metrics.inception_weights")]
    if any(not Path(f).exists() for f in user_files):  # the user's data or weights: the promised one-line error
        assert p.returncode == 2 and p.stderr.strip().count("\n") == 0, p.stderr
        assert ("not found" in p.stderr or "no file" in p.stderr) and "download" in p.stderr.lower(), p.stderr
        return
    if any(a.startswith("trainer=ddp") for a in args):
        assert p.returncode == 0, p.stderr[-3000:]
        return
    assert p.returncode == 0, f"{where}: {command}\n{p.stderr[-3000:]}"
    files = sorted(out.glob("*/metrics.json")) if multirun else [out / "metrics.json"]
    assert files, f"{command} wrote no metrics.json"
    for f in files:
        metrics = json.loads(f.read_text())
        values = [v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "elapsed_s"]
        assert values and all(math.isfinite(v) for v in values), (command, metrics)


@pytest.mark.parametrize("where, command", DESIGN, ids=[c for _, c in DESIGN])
def test_documented_lgans_design_command(tmp_path, where, command):
    p = run(["-m", "lightning_gans.cli.design", *shlex.split(command)[1:]], tmp_path, timeout=300)
    assert p.returncode == 0, f"{where}: {command}\n{p.stderr[-2000:]}"
    assert "phi" in p.stdout and "psi" in p.stdout
    for a, b in zip(shlex.split(command), shlex.split(command)[1:]):
        if a == "--out":
            assert (tmp_path / b).is_file()


@pytest.mark.slow
def test_the_documented_designed_gan_trains_without_a_non_finite_step(tmp_path):
    """`loss=designed loss.omega='0.5*log(r)' loss.rho='exp(-t)'` once diverged within 30 G steps (its
    saddle generator loss 1 - e^{-t} is unbounded below); the default generator is now non-saturating."""
    out = tmp_path / "out"
    p = run(["-m", "lightning_gans.cli.train", "loss=designed", "loss.omega='0.5*log(r)'", "loss.rho='exp(-t)'",
             "model.nonfinite=skip", "model.max_skipped_fraction=0", "trainer.max_steps=1000",
             f"hydra.run.dir={out}", "logger=none", "trainer.enable_progress_bar=false"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "0 skipped for non-finite losses" in p.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(math.isfinite(metrics[k]) for k in ("reverse_kl", "high_quality_fraction", "modes_covered"))
