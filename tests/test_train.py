"""`lgans-train` end to end: the default run in a short form, a multirun, formulas, and bad input."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_gans.cli import train

ROOT = Path(__file__).resolve().parents[1]
# A few steps, every output on: evaluations at steps 10 and 20 give the GIF two frames.
SHORT = ["trainer.max_steps=20", "callbacks.metrics.every_n_steps=10", "callbacks.checkpoint.every_n_train_steps=10",
         "trainer.log_every_n_steps=2"]
QUIET = ["trainer=debug", "logger=none", "callbacks.metrics.plot=false", "~callbacks.checkpoint",
         "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false"]


def cli(args, cwd, script=False):
    """Run the CLI in a fresh process from `cwd` (not the repository), one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    exe = shutil.which("lgans-train") if script else None
    cmd = [exe] if exe else [sys.executable, "-m", "lightning_gans.cli.train"]
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def elsewhere(tmp_path):
    d = tmp_path / "cwd"
    d.mkdir()
    return d


def test_default_run_writes_every_output_and_says_where(tmp_path, elsewhere):
    run = tmp_path / "run"
    p = cli([f"hydra.run.dir={run}", *SHORT], elsewhere)
    assert p.returncode == 0, p.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert isinstance(metrics["modes_covered"], int) and 0 <= metrics["modes_covered"] <= 8
    assert 0 <= metrics["high_quality_fraction"] <= 1 and metrics["reverse_kl"] >= 0
    assert [h["step"] for h in metrics["history"]] == [10, 20]
    assert metrics["config"]["loss"]["name"] == "rsgan" and metrics["config"]["data"]["name"] == "ring8"
    for name in ("samples.png", "samples.gif", "config.yaml", "checkpoints/last.ckpt", "checkpoints/step000010.ckpt",
                 "csv/metrics.csv", "train.log"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    header = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "train/d_loss" in header and "metrics/modes_covered" in header
    for path in ("metrics.json", "samples.gif", "checkpoints", "csv", "tensorboard"):
        assert str(run / path) in p.stdout, path
    assert "Epoch 0" in p.stdout  # the progress bar (Lightning's TQDM bar writes to stdout)
    assert list(elsewhere.iterdir()) == []  # nothing lands in the working directory


def test_multirun_over_two_losses_with_the_console_script(tmp_path, elsewhere):
    sweep = tmp_path / "sweep"
    p = cli(["-m", "loss=sgan,nsgan", f"hydra.sweep.dir={sweep}", *QUIET], elsewhere, script=True)
    assert p.returncode == 0, p.stderr[-3000:]
    runs = sorted(sweep.glob("*/metrics.json"))
    assert [json.loads(r.read_text())["config"]["loss"]["name"] for r in runs] == ["sgan", "nsgan"]
    assert (sweep / "multirun.yaml").is_file()


def test_designed_loss_from_formulas_on_the_command_line(tmp_path, elsewhere):
    # the shell has eaten the quotes of loss.omega='0.5*log(r)'; the CLI re-quotes formulas for Hydra
    p = cli(["loss=designed", "loss.omega=0.5*log(r)", "loss.rho=exp(-t)", f"hydra.run.dir={tmp_path / 'r'}", *QUIET],
            elsewhere)
    assert p.returncode == 0, p.stderr[-3000:]
    cfg = json.loads((tmp_path / "r" / "metrics.json").read_text())["config"]
    assert cfg["loss"]["omega"] == "0.5*log(r)" and cfg["loss"]["rho"] == "exp(-t)"


def test_bad_values_fail_before_training_with_the_argument_named(tmp_path, elsewhere):
    p = cli(["model.d_optimizer.lr=-0.001", f"hydra.run.dir={tmp_path / 'r'}"], elsewhere)
    assert p.returncode == 2
    assert "invalid configuration: model.d_optimizer.lr must be a positive number, got -0.001" in p.stderr
    assert "Epoch" not in p.stderr and not (tmp_path / "r" / "metrics.json").exists()
    p = cli(["loss=nonexistent"], elsewhere)  # one line, listing the options
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert "unknown loss option 'nonexistent'" in p.stderr and "rasgan" in p.stderr


@pytest.mark.parametrize("args, line", [
    (["los=rsgan"], "lgans-train: unknown config key 'los' in 'los=rsgan'; did you mean loss?"),
    (["loss=rsgn"], "lgans-train: unknown loss option 'rsgn'; did you mean rsgan"),
    (["model.n_critc=3"], "lgans-train: unknown config key 'model.n_critc'; did you mean model.n_critic?"),
    (["-m", "loss=sgan,nope"], "lgans-train: unknown loss option 'nope'"),
])
def test_typos_get_one_line_with_the_closest_names(elsewhere, args, line):
    p = cli(args, elsewhere)
    assert p.returncode == 2 and p.stderr.strip().startswith(line) and p.stderr.strip().count("\n") == 0, p.stderr


def test_debug_trainer_wins_over_an_experiments_budget(tmp_path):
    cfg = compose(tmp_path, "experiment=digits", "trainer=debug")
    assert cfg.trainer.max_steps == 20 and cfg.budget_steps == 8000
    assert compose(tmp_path, "experiment=digits").trainer.max_steps == 8000


def test_one_x_axis_no_library_warnings_and_skips_reported(tmp_path, elsewhere):
    run = tmp_path / "run"
    p = cli([f"hydra.run.dir={run}", "trainer.max_steps=40", "trainer.log_every_n_steps=2",
             "callbacks.metrics.every_n_steps=20", "callbacks.samples.every_n_steps=20"], elsewhere)
    assert p.returncode == 0, p.stderr[-3000:]
    import csv

    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    train_steps = [float(r["step"]) for r in rows if r.get("train/d_loss")]
    metric_steps = [float(r["step"]) for r in rows if r.get("metrics/modes_covered")]
    # one x-axis, Lightning's own: the batch index. Evaluations at optimizer steps 20 and 40 = batches 10 and 20
    assert metric_steps == [9.0, 19.0] and max(train_steps) == 19.0
    assert train_steps == [float(s) for s in range(1, 20, 2)]  # log_every_n_steps=2: every other batch
    assert "0 skipped for non-finite losses" in p.stdout
    assert sorted(x.name for x in (run / "samples").iterdir()) == ["step0000020.png", "step0000040.png"]
    noise = [line for line in p.stderr.splitlines() if "Warning" in line or "warn" in line.lower() or "Tip:" in line]
    assert not noise, noise


def test_non_finite_run_exits_1_with_its_checkpoint_in_the_run_dir(tmp_path, elsewhere):
    run = tmp_path / "run"
    p = cli([f"hydra.run.dir={run}", "trainer=debug", "model.g_optimizer.lr=1e30", "model.d_optimizer.lr=1e30",
             "model.r1_gamma=0", "logger=none"], elsewhere)
    assert p.returncode == 1, p.stderr[-2000:]
    assert "lgans-train: training failed: non-finite" in p.stderr
    assert list((run / "checkpoints").glob("nonfinite-step=*.ckpt"))


def compose(tmp_path, *overrides):
    return train.compose_config([f"paths.output_dir={tmp_path}", *overrides])


@pytest.mark.parametrize("overrides, message", [
    (["loss.pairing=every"], r"loss=rsgan .*pairing must be one of \('paired', 'all'\), got 'every'"),
    (["loss=designed", "loss.omega=-log(r)"], r"design check failed \[omega increasing\].*fails at r ="),
    (["model.g_optimizer.lr=0"], r"model.g_optimizer.lr must be a positive number, got 0"),
    (["trainer.max_steps=0"], r"trainer.max_steps must be positive"),
    (["data=mnist", "model=dcgan"], r"missing required value\(s\): data.root"),
    (["data=mnist", "model=dcgan", "data.root=/no/such/dir"], r"MNIST: data not found at /no/such/dir.*Nothing is downloaded"),
    (["torch_threads=0"], r"torch_threads must be null \(torch's default: every core\) or an integer >= 1, got 0"),
    (["data=digits"], r"MLPGenerator\) makes samples of shape \(2,\) but the data serve \(1, 8, 8\); use model=dcgan"),
])
def test_invalid_configs_raise_config_errors(tmp_path, overrides, message):
    with pytest.raises(train.ConfigError, match=message):
        train.build(compose(tmp_path, *overrides))


def test_torch_threads_sets_the_runs_thread_count(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        train.run(compose(tmp_path, "torch_threads=1", "budget_steps=2", "callbacks.metrics.every_n_steps=0",
                          "logger=none", "trainer.enable_progress_bar=false"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
