"""Measurement core of `lgans-bench`: the benchmarked ops, interleaved timing, peak extra memory.

Three implementations of each loss run on the same inputs:

    fused    lightning_gans.ops.<op>(..., impl="fused")   (the native kernels)
    eager    lightning_gans.reference.<op>(...)           (pure torch, what a user would write)
    compile  torch.compile(reference.<op>, dynamic=False) (inductor on the same reference)

Each is timed for three passes: "fwd" (forward with grad-requiring inputs, as in
training), "bwd" (the forward runs outside the timer; `torch.autograd.grad` of the
loss is timed) and "fwd+bwd". Gradients are taken with `torch.autograd.grad`
rather than `.backward()` so every call allocates fresh gradients instead of
accumulating into `.grad` (the same work for all three implementations).

Peak extra memory is the highest amount of memory allocated above what was
live when the pass started (inputs excluded), measured once per (impl, pass)
outside the timed loop:
  * CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`,
    minus `memory_allocated` at the start.
  * CPU: torch keeps no CPU allocator statistics, but the profiler sees every
    allocation and free of c10's CPU allocator (`profile_memory=True`: eager ops,
    inductor's buffers and the native kernels' `at::empty` temporaries alike).
    The "[memory]" events are sorted by time and summed; the peak is the largest
    running sum. Memory a kernel takes with raw malloc (not through c10) is not seen.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...kernels import extension as _ext
from ...kernels import ops, reference

IMPLS = ("fused", "eager", "compile")
PASSES = ("fwd", "bwd", "fwd+bwd")
MIN_REPS = 3  # a case stops early on its time budget, but never below this many repetitions


@dataclass(frozen=True)
class OpSpec:
    name: str
    kind: str  # "elementwise": inputs of N logits each; "pairs": N real and M = N fake logits, N*M pairs
    n_inputs: int
    fused: Callable[..., torch.Tensor]
    ref: Callable[..., torch.Tensor]


# sign = +1 everywhere (the discriminator side); the kernels do the same work for either sign.
OPS: dict[str, OpSpec] = {
    s.name: s
    for s in (
        OpSpec("softplus_mean", "elementwise", 1,
               lambda x: ops.softplus_mean(x, 1.0, impl="fused"),
               lambda x: reference.softplus_mean(x, 1.0)),
        OpSpec("sgan_d", "elementwise", 2,
               lambda r, f: ops.sgan_d(r, f, impl="fused"),
               lambda r, f: reference.sgan_d(r, f)),
        OpSpec("relativistic_paired", "elementwise", 2,
               lambda r, f: ops.relativistic_paired(r, f, 1.0, impl="fused"),
               lambda r, f: reference.relativistic_paired(r, f, 1.0)),
        OpSpec("relativistic_average", "elementwise", 2,
               lambda r, f: ops.relativistic_average(r, f, 1.0, impl="fused"),
               lambda r, f: reference.relativistic_average(r, f, 1.0)),
        OpSpec("relativistic_all_pairs", "pairs", 2,
               lambda r, f: ops.relativistic_all_pairs(r, f, 1.0, impl="fused"),
               lambda r, f: reference.relativistic_all_pairs(r, f, 1.0)),
    )
}


def fused_unavailable_reason(device: torch.device) -> str | None:
    """None when the fused kernels can run on `device`, else why not."""
    if not _ext.available():
        return f"native extension unavailable: {_ext.load_error()}"
    if device.type == "cuda" and not _ext.cuda_built():
        return "native extension was built without CUDA kernels"
    return None


def make_inputs(spec: OpSpec, size: int, dtype: torch.dtype, device: torch.device, seed: int = 0):
    """Logits ~ N(0, 2^2), the same for every implementation; each requires grad."""
    g = torch.Generator().manual_seed(seed)
    return tuple(
        (2.0 * torch.randn(size, generator=g)).to(device=device, dtype=dtype).requires_grad_()
        for _ in range(spec.n_inputs)
    )


def eager_bytes_estimate(spec: OpSpec, size: int) -> int:
    """Memory the eager/compiled reference needs: three float32 N x M matrices for all pairs."""
    return 3 * 4 * size * size if spec.kind == "pairs" else 8 * 4 * size * spec.n_inputs


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62  # unknown: do not skip anything


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- timing
def time_pass(fn, inputs, pass_: str, inner: int, device: torch.device) -> float:
    """Seconds per call of one pass, averaged over `inner` back-to-back calls."""
    if pass_ == "bwd":
        losses = [fn(*inputs) for _ in range(inner)]  # forward outside the timer
        _sync(device)
        t0 = time.perf_counter()
        for loss in losses:
            torch.autograd.grad(loss, inputs)
        _sync(device)
        t1 = time.perf_counter()
        del losses
    elif pass_ == "fwd":
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            fn(*inputs)
        _sync(device)
        t1 = time.perf_counter()
    elif pass_ == "fwd+bwd":
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.autograd.grad(fn(*inputs), inputs)
        _sync(device)
        t1 = time.perf_counter()
    else:
        raise ValueError(f"pass must be one of {PASSES}, got {pass_!r}")
    return (t1 - t0) / inner


# ----------------------------------------------------------------------------- memory
@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence the profiler's C++ start/stop log lines (fd 2), not Python exceptions."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_peak_from_events(events) -> int:
    cpu_types = {torch._C._autograd.DeviceType.CPU}
    for extra in ("MKLDNN", "IDEEP"):
        if hasattr(torch._C._autograd.DeviceType, extra):
            cpu_types.add(getattr(torch._C._autograd.DeviceType, extra))
    mem = sorted(
        (e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]" and e.device_type() in cpu_types
    )
    cur = peak = 0
    for _, nbytes in mem:  # +size on allocation, -size on free
        cur += nbytes
        peak = max(peak, cur)
    return peak


def _one_pass(fn, inputs, pass_: str, pre):
    if pass_ == "fwd":
        return fn(*inputs)  # kept alive: the loss and what autograd saved count
    if pass_ == "bwd":
        return torch.autograd.grad(pre, inputs)
    return torch.autograd.grad(fn(*inputs), inputs)


def peak_extra_bytes(fn, inputs, pass_: str, device: torch.device) -> int:
    """Peak bytes allocated during one pass above what was live when it started."""
    gc.collect()
    pre = fn(*inputs) if pass_ == "bwd" else None
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = _one_pass(fn, inputs, pass_, pre)
        _sync(device)
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        from torch.autograd.profiler import profile

        with _quiet_native_stderr():
            with profile(profile_memory=True, use_cpu=True) as prof:
                out = _one_pass(fn, inputs, pass_, pre)
                del pre
        peak = _cpu_peak_from_events(prof.kineto_results.events())
    del out
    return max(int(peak), 0)


# ----------------------------------------------------------------------------- one case
def _build(spec: OpSpec, impl: str):
    if impl == "fused":
        return spec.fused
    if impl == "eager":
        return spec.ref
    torch._dynamo.reset()  # one compiled graph per case: no recompile limit, no stale graphs
    return torch.compile(spec.ref, dynamic=False)


def _stats(samples: list[float]) -> dict:
    ms = np.asarray(samples) * 1e3
    p20, med, p80 = np.percentile(ms, [20, 50, 80])
    return {"median_ms": float(med), "p20_ms": float(p20), "p80_ms": float(p80)}


def bench_case(spec: OpSpec, size: int, dtype: torch.dtype, device: torch.device, *, impls=IMPLS,
               passes=PASSES, reps: int = 20, budget_s: float = 20.0, sample_s: float = 2e-3,
               max_inner: int = 1000, log=lambda msg: None) -> tuple[list[dict], list[dict]]:
    """Time and measure one (op, size, dtype, device) for every impl; returns (records, skipped)."""
    key = {"op": spec.name, "size": size, "n": size, "m": size if spec.n_inputs == 2 else 0,
           "dtype": str(dtype).removeprefix("torch."), "device": device.type}
    skipped: list[dict] = []
    inputs = make_inputs(spec, size, dtype, device)
    fns, losses, compile_s = {}, {}, None

    for impl in impls:
        reason = None
        if impl == "fused":
            reason = fused_unavailable_reason(device)
        elif eager_bytes_estimate(spec, size) > 0.8 * available_bytes(device):
            reason = f"would need ~{eager_bytes_estimate(spec, size) / 2**30:.1f} GiB, more than is free"
        if reason is None:
            try:
                t0 = time.perf_counter()
                fn = _build(spec, impl)
                for _ in range(2):  # warm-up; compiles here, outside every timer
                    torch.autograd.grad(fn(*inputs), inputs)
                if impl == "compile":
                    compile_s = time.perf_counter() - t0
                losses[impl] = float(fn(*inputs).detach().float())
                fns[impl] = fn
            except Exception as e:  # noqa: BLE001 - a failing baseline is reported, not fatal
                what = "torch.compile failed" if impl == "compile" else f"{impl} failed"
                reason = f"{what}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if reason is not None:
            skipped.append({**key, "impl": impl, "reason": reason})
            log(f"  skip {impl}: {reason}")
    if not fns:
        return [], skipped

    # Inner repetitions so one sample of the fastest impl lasts about sample_s.
    fastest = min(_probe(fn, inputs, device) for fn in fns.values())
    inner = int(max(1, min(max_inner, sample_s / max(fastest, 1e-9))))

    peaks = {(i, p): peak_extra_bytes(fns[i], inputs, p, device) for i in fns for p in passes}

    order = list(fns)
    samples = {(i, p): [] for i in order for p in passes}
    gc.collect()
    gc.disable()
    try:
        t_start = time.perf_counter()
        for rep in range(reps):
            rotated = order[rep % len(order):] + order[: rep % len(order)]  # drift hits all impls alike
            for p in passes:
                for impl in rotated:
                    samples[(impl, p)].append(time_pass(fns[impl], inputs, p, inner, device))
            if rep + 1 >= MIN_REPS and time.perf_counter() - t_start > budget_s:
                break
    finally:
        gc.enable()

    ref_loss = losses.get("eager")
    tol = 1e-3 if dtype in (torch.float32, torch.float64) else 3e-2
    records = []
    for impl in order:
        agrees = None if ref_loss is None else abs(losses[impl] - ref_loss) <= tol * max(1.0, abs(ref_loss))
        for p in passes:
            rec = {**key, "impl": impl, "pass": p, **_stats(samples[(impl, p)]),
                   "peak_bytes": peaks[(impl, p)], "reps": len(samples[(impl, p)]), "inner": inner,
                   "loss": losses[impl], "agrees_with_eager": agrees}
            if impl == "compile":
                rec["compile_s"] = compile_s
            records.append(rec)
    return records, skipped


def _probe(fn, inputs, device) -> float:
    return min(time_pass(fn, inputs, "fwd+bwd", 1, device) for _ in range(2))


# ----------------------------------------------------------------------------- save vs recompute
# The elementwise forwards can hand their backward a saved unit-upstream gradient g
# (with_grad=True: the forward writes g, the backward reads and scales it) or nothing
# (with_grad=False: the backward reads the logits again and recomputes σ). The C++ autograd
# kernel picks one by N (csrc/autograd.cpp); this times both on the raw ops, below autograd,
# so that only the kernels' difference is measured.
def _raw_elementwise(name: str, xs, grad, save: bool):
    L = torch.ops.lightning_gans
    if name == "softplus_mean":
        loss, g = L.softplus_mean(xs[0], 1.0, save)
        return loss, L.softplus_mean_backward(grad, xs[0], g, 1.0)
    if name == "sgan_d":
        loss, gr, gf = L.sgan_d(xs[0], xs[1], save)
        return loss, L.sgan_d_backward(grad, xs[0], xs[1], gr, gf)
    loss, g = L.rel_paired(xs[0], xs[1], 1.0, save)
    return loss, L.rel_paired_backward(grad, xs[0], xs[1], g, 1.0)


def save_vs_recompute(name: str, size: int, dtype=torch.float32, reps: int = 15, sample_s: float = 2e-3) -> dict:
    """Median seconds of forward+backward with a saved gradient and with a recomputed one, interleaved."""
    spec = OPS[name]
    xs = [t.detach() for t in make_inputs(spec, size, dtype, torch.device("cpu"))]
    grad = torch.tensor(0.75, dtype=dtype)
    with torch.inference_mode():
        runs = {mode: (lambda s=(mode == "save"): _raw_elementwise(name, xs, grad, s)) for mode in ("save", "recompute")}
        for fn in runs.values():
            fn()
        t0 = time.perf_counter()
        runs["save"]()
        inner = int(max(1, min(1000, sample_s / max(time.perf_counter() - t0, 1e-9))))
        samples = {mode: [] for mode in runs}
        for rep in range(reps):
            for mode in (("save", "recompute") if rep % 2 == 0 else ("recompute", "save")):
                t0 = time.perf_counter()
                for _ in range(inner):
                    runs[mode]()
                samples[mode].append((time.perf_counter() - t0) / inner)
    med = {mode: float(np.median(v)) for mode, v in samples.items()}
    return {"op": name, "size": size, "dtype": str(dtype).removeprefix("torch."), "save_s": med["save"],
            "recompute_s": med["recompute"], "save_over_recompute": med["save"] / med["recompute"]}
