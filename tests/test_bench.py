"""Smoke tests of `lgans-bench`: it completes, writes valid JSON, and measures memory sensibly.

No timing assertions: the benchmark is not a test.
"""
from __future__ import annotations

import json

import pytest
import torch

from lightning_gans.cli import bench
from lightning_gans.cli.bench import core as bench_core
from lightning_gans.cli.bench import report as bench_report
from lightning_gans.kernels import extension as _ext

RECORD_KEYS = {"op", "impl", "size", "dtype", "device", "pass",
               "median_ms", "p20_ms", "p80_ms", "peak_bytes", "reps", "inner"}


def test_small_run_writes_json_table_plot(tmp_path, capsys):
    js, png, md = tmp_path / "b.json", tmp_path / "b.png", tmp_path / "b.md"
    rc = bench.main(["--ops", "softplus_mean,relativistic_all_pairs", "--sizes", "4K", "--pair-sizes", "256",
                     "--dtypes", "float32", "--device", "cpu", "--reps", "3", "--budget", "0.2",
                     "--sample-ms", "0.2", "--json", str(js), "--plot", str(png), "--md", str(md)])
    assert rc == 0
    out = json.loads(js.read_text())
    meta = out["meta"]
    for key in ("torch", "date", "git_commit", "command", "cpu_count", "threads", "fused_available"):
        assert key in meta
    assert meta["fused_available"] == _ext.available()

    impls = {"eager", "compile"} | ({"fused"} if _ext.available() else set())
    compile_failed = {s["op"] for s in out["skipped"] if s["impl"] == "compile"}
    keys = {(r["op"], r["impl"], r["size"], r["pass"]) for r in out["records"]}
    assert len(keys) == len(out["records"])  # one record per (op, impl, size, dtype, device, pass)
    for op, size in (("softplus_mean", 4096), ("relativistic_all_pairs", 256)):
        for impl in impls - ({"compile"} if op in compile_failed else set()):
            for p in bench_core.PASSES:
                assert (op, impl, size, p) in keys
    for r in out["records"]:
        assert RECORD_KEYS <= set(r)
        assert r["dtype"] == "float32" and r["device"] == "cpu"
        assert 0 < r["p20_ms"] <= r["median_ms"] <= r["p80_ms"]
        assert isinstance(r["peak_bytes"], int) and r["peak_bytes"] >= 0
        assert r["reps"] >= bench_core.MIN_REPS
        assert r["agrees_with_eager"] is not False, r
    if not _ext.available():
        fused = [s for s in out["skipped"] if s["impl"] == "fused"]
        assert len(fused) == 2 and all(_ext.load_error() in s["reason"] for s in fused)

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| device | dtype | op |" in md.read_text()
    assert "relativistic_all_pairs" in capsys.readouterr().out


def test_peak_memory_sees_what_a_pass_allocates():
    cpu = torch.device("cpu")
    x = torch.randn(1 << 18, requires_grad=True)
    # (x * 2) is a 1 MiB temporary; the gradient another 1 MiB.
    assert bench_core.peak_extra_bytes(lambda t: (t * 2).sum(), (x,), "fwd", cpu) >= 1 << 20
    assert bench_core.peak_extra_bytes(lambda t: (t * 2).sum(), (x,), "fwd+bwd", cpu) >= 1 << 20
    assert bench_core.peak_extra_bytes(lambda t: t.sum(), (x,), "fwd", cpu) < 1 << 12

    spec = bench_core.OPS["relativistic_all_pairs"]
    r, f = bench_core.make_inputs(spec, 512, torch.float32, cpu)
    eager = bench_core.peak_extra_bytes(spec.ref, (r, f), "fwd+bwd", cpu)
    assert eager >= 512 * 512 * 4  # the N x M matrix
    if _ext.available():
        assert bench_core.peak_extra_bytes(spec.fused, (r, f), "fwd+bwd", cpu) < 512 * 512 * 4 // 8


def test_fused_unavailable_is_reported_not_fatal(monkeypatch):
    monkeypatch.setattr(_ext, "_loaded", False)
    monkeypatch.setattr(_ext, "_error", "ImportError: test says no kernels")
    recs, skipped = bench_core.bench_case(bench_core.OPS["sgan_d"], 1024, torch.float32, torch.device("cpu"),
                                          impls=("fused", "eager"), passes=("fwd+bwd",), reps=3, budget_s=0.0)
    assert [s["impl"] for s in skipped] == ["fused"]
    assert "test says no kernels" in skipped[0]["reason"]
    assert [(r["impl"], r["pass"], r["reps"]) for r in recs] == [("eager", "fwd+bwd", 3)]


def test_cli_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        bench.main(["--ops", "not_an_op"])
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "0"])
    assert bench.parse_size("16M") == 16 << 20 and bench.parse_size("4k") == 4096
    assert bench.parse_size("64") == 64
    with pytest.raises(ValueError):
        bench_core.time_pass(lambda: None, (), "sideways", 1, torch.device("cpu"))


def _rec(op, impl, size, ms, peak=0, device="cpu", p="fwd+bwd"):
    return {"op": op, "impl": impl, "size": size, "n": size, "m": size, "dtype": "float32", "device": device,
            "pass": p, "median_ms": ms, "p20_ms": ms, "p80_ms": ms, "peak_bytes": peak}


def test_targets_and_gpu_rows_from_records():
    recs = [_rec("relativistic_all_pairs", "fused", 4096, 10.0, 100 << 10),
            _rec("relativistic_all_pairs", "eager", 4096, 600.0, 192 << 20),
            _rec("relativistic_all_pairs", "compile", 4096, 20.0, 64 << 20),
            _rec("softplus_mean", "fused", 1 << 20, 1.0), _rec("softplus_mean", "eager", 1 << 20, 3.0),
            _rec("softplus_mean", "compile", 1 << 20, 0.5),
            _rec("sgan_d", "fused", 64, 10.0), _rec("sgan_d", "eager", 64, 25.0), _rec("sgan_d", "compile", 64, 9.0),
            _rec("relativistic_paired", "fused", 16 << 20, 10.0), _rec("relativistic_paired", "compile", 16 << 20, 11.0)]
    got = {t["target"]: (round(t["measured"], 3), t["met"]) for t in bench_report.evaluate_targets(recs)}
    assert got["all pairs 4096x4096: eager / fused"] == (60.0, True)
    assert got["all pairs 4096x4096: compile / fused"] == (2.0, False)  # >= 10x
    assert got["all pairs 4096x4096: fused peak extra memory"] == (0.098, True)
    assert got["all pairs 4096x4096: eager peak extra memory"] == (192.0, True)
    assert got["softplus_mean 1M: eager / fused"] == (3.0, True)  # >= 3x
    assert got["softplus_mean 1M: compile / fused"] == (0.5, False)  # >= 1.2x
    assert got["sgan_d 64: eager / fused"] == (2.5, True)  # >= 2x
    assert got["sgan_d 64: compile / fused"] == (0.9, False)  # >= 1x
    assert got["relativistic_paired 16M: compile / fused"] == (1.1, True)
    assert "relativistic_paired 16M: eager / fused" not in got  # no eager target at 16M

    limits = {"sfu_pairs_per_s": 1e12, "dram_gb_per_s": 1000.0}
    gpu = [_rec("relativistic_all_pairs", "fused", 65536, 8.0, device="cuda"),
           _rec("softplus_mean", "fused", 64 << 20, 1.0, device="cuda", p="fwd")]
    rows = {r["metric"]: r for r in bench_report.gpu_section(gpu, limits)}
    assert rows["pairs/s"]["achieved"] == pytest.approx(65536**2 / 8e-3)
    assert rows["GB/s"]["achieved"] == pytest.approx((64 << 20) * 4 / 1e-3 / 1e9)
    assert rows["GB/s"]["fraction"] == pytest.approx(rows["GB/s"]["achieved"] / 1000.0)


def test_default_sizes_and_the_64m_option():
    args = bench.resolve(bench.build_parser().parse_args([]))
    elementwise = bench.sizes_for(bench_core.OPS["softplus_mean"], "cpu", args)
    assert [64, 256, 1024, 64 << 10, 1 << 20, 16 << 20] == [s for s in elementwise if s != 4096]
    assert 64 << 20 not in elementwise
    args = bench.resolve(bench.build_parser().parse_args(["--with-64m"]))
    assert bench.sizes_for(bench_core.OPS["sgan_d"], "cpu", args)[-1] == 64 << 20
    assert bench.sizes_for(bench_core.OPS["relativistic_all_pairs"], "cpu", args)[0] == 256


@pytest.mark.skipif(not _ext.available(), reason="native extension missing")
def test_crossover_mode_times_both_backward_paths(tmp_path, capsys):
    js = tmp_path / "c.json"
    assert bench.main(["--crossover", "--ops", "softplus_mean,sgan_d,relativistic_average", "--sizes", "64,5000",
                       "--reps", "3", "--sample-ms", "0.2", "--json", str(js)]) == 0
    rows = json.loads(js.read_text())["crossover"]
    assert [(r["op"], r["size"]) for r in rows] == [("softplus_mean", 64), ("softplus_mean", 5000),
                                                    ("sgan_d", 64), ("sgan_d", 5000)]  # average has no choice
    for r in rows:
        assert r["save_s"] > 0 and r["recompute_s"] > 0
        assert r["save_over_recompute"] == pytest.approx(r["save_s"] / r["recompute_s"])
    assert "| softplus_mean | 64 |" in capsys.readouterr().out


def test_train_step_comparison_runs_and_reports_a_ratio(tmp_path):
    from lightning_gans.cli.bench import main

    out, md = tmp_path / "ts.json", tmp_path / "ts.md"
    assert main(["--train-step", "--quick", "--rounds", "3", "--json", str(out), "--md", str(md)]) == 0
    rec = json.loads(out.read_text())
    meta = rec["meta"]  # a record says what was measured, where, and under what load
    assert {"git_commit", "cpu", "cpu_affinity", "torch", "lightning", "loadavg_start", "loadavg_end"} <= set(meta)
    assert f"commit {meta['git_commit']}" in md.read_text() and "load average" in md.read_text()
    assert rec["clock"] == "process" and len(rec["hand_all"]) == len(rec["module_all"]) == len(rec["floor_all"]) == 3
    assert rec["hand_batches_per_s"] > 0 and rec["module_batches_per_s"] > 0
    assert rec["ratio"] == round(rec["module_batches_per_s"] / rec["hand_batches_per_s"], 3)
    assert rec["floor_ratio"] == round(rec["floor_batches_per_s"] / rec["hand_batches_per_s"], 3)


def test_the_bench_prints_no_torch_notice_on_a_cpu_machine(tmp_path):
    """torch.compile imports torch's extension builder, which logs "No CUDA runtime is found" on a CUDA
    build without a GPU; lgans-bench keeps that out of its output (issue: noise on every run)."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "lightning_gans.cli.bench", "--quick", "--ops", "softplus_mean",
                        "--sizes", "1K", "--pair-sizes", "256", "--passes", "fwd+bwd"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "No CUDA runtime" not in p.stderr + p.stdout
