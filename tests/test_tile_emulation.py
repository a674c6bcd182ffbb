"""The CUDA all-pairs kernel's tile math, run on the CPU.

lightning_gans::all_pairs_tile_emulate executes csrc/tile_math.h, the code the
CUDA kernel (csrc/cuda/all_pairs.cu) runs, in the kernel's tile order and
reduction order. These tests hold it to float64 math written here, in the
regimes of tests/test_all_pairs_factorised.py, so the kernel's algebra, range
checks, running product and reductions are tested without a GPU.
"""
import pytest
import torch

from lightning_gans import kernels

pytestmark = pytest.mark.skipif(not kernels.extension_available(), reason="native extension not built")

EXACT, FACT_S, FACT_P = 0, 1, 2  # the `paths` counters: (row, chunk) pieces per path (S / p form)


def emulate(r, f, sign=1.0):
    return torch.ops.lightning_gans.all_pairs_tile_emulate(r, f, sign)


def want(r, f, sign=1.0):
    """loss, row sums and column sums of σ in float64, from the inputs' values."""
    z = sign * (f.double()[None, :] - r.double()[:, None])
    s = torch.sigmoid(z)
    return torch.nn.functional.softplus(z).mean(), s.sum(1), s.sum(0)


def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def randn(n, seed, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=g, dtype=torch.float64) * scale + shift).float()


def check(r, f, sign=1.0, tol=1e-5):
    loss, row, col, paths = emulate(r, f, sign)
    wl, wr, wc = want(r, f, sign)
    assert rel(loss, wl) <= tol, f"loss: relative error {rel(loss, wl):.3g}"
    assert rel(row, wr) <= tol, f"row sums: relative error {rel(row, wr):.3g}"
    assert rel(col, wc) <= tol, f"column sums: relative error {rel(col, wc):.3g}"
    assert row.dtype == col.dtype == (torch.float64 if r.dtype == torch.float64 else torch.float32)
    return paths


REGIMES = ["typical", "wide", "offset", "tiny", "huge", "boundary", "huge_pm1e4"]


def regime(case, n, m, sign):
    r, f = randn(n, 1), randn(m, 2)
    if case == "typical":
        r, f = r * 3, f * 3 - 1
    elif case == "wide":  # |z| up to ~100: rows mix both paths across chunks
        r, f = r * 30, f * 30
    elif case == "offset":  # large common offset: c_t keeps a_j, b_i finite
        r, f = r + 1000.0, f + 1000.5
    elif case == "tiny":  # every z << 0: sp(z) ~ e^z, relative precision of the S form
        r, f = r * 0.5 + 40 * sign, f * 0.5
    elif case == "huge":  # every z >> 0: exact path
        r, f = r * 0.5 - 40 * sign, f * 0.5
    elif case == "boundary":  # z straddles the 20 / -60 limits and the S / p form switch at 2
        r = r * 0.1 + torch.tensor([-19.9, 59.9, -1.9, -2.1])[torch.arange(n) % 4] * sign
        f = f * 0.1
    elif case == "huge_pm1e4":
        r, f = torch.sign(r) * 1e4 + r, torch.sign(f) * 1e4 + f
    return r, f


# The path each regime must exercise (else a test could pass on the exact path alone).
EXPECT = {"typical": (FACT_S, FACT_P), "tiny": (FACT_S,), "offset": (FACT_S, FACT_P), "huge": (EXACT,),
          "boundary": (EXACT, FACT_S, FACT_P), "wide": (EXACT, FACT_S, FACT_P), "huge_pm1e4": (EXACT,)}


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("case", REGIMES)
def test_regimes_match_float64(case, sign):
    n, m = 1031, 2053  # odd sizes: several chunks and row tiles, padded lanes and rows
    r, f = regime(case, n, m, sign)
    paths = check(r, f, sign)
    for p in EXPECT[case]:
        assert paths[p] > 0, f"{case}: path {p} never taken ({paths.tolist()})"
    if case in ("typical", "tiny", "offset"):
        assert paths[EXACT] <= 0.01 * paths.sum(), f"{case}: expected factorised pieces, got {paths.tolist()}"


@pytest.mark.parametrize("spike", [2.1, 19.7])
def test_p_form_rows_of_mostly_small_pairs(spike):
    # One column per chunk at z = spike puts every (row, chunk) on the p form, whose
    # rounding is absolute in log p; the other 255 columns (z ~ -3 .. -25) carry most
    # of the loss in small pieces. At 19.7 the product also nears the mid-row scaling.
    r = randn(300, 3) * 0.05
    f = randn(2053, 4) * 5 - 14
    f[::256] = spike
    paths = check(r, f)
    assert paths[FACT_P] > 0 and paths[EXACT] == 0


@pytest.mark.parametrize("n,m", [(1, 1), (1, 257), (257, 1), (63, 255), (64, 256), (65, 257), (2, 513),
                                 (513, 2), (300, 7), (2053, 1031)])
def test_tile_boundaries_and_sizes(n, m):
    r, f = regime("typical", n, m, 1.0)
    check(r, f)


def test_many_tiles_per_block():
    # Large enough that blocks loop over several row tiles (rtpb > 1) and, with
    # N << M, several chunks (ctpb > 1): the partials' read-modify-write paths.
    check(*regime("typical", 2200, 3000, 1.0))
    check(*regime("typical", 40, 600_000, -1.0))


@pytest.mark.parametrize("sign", [0.5, -2.5, 3.0])
def test_sign_not_unit(sign):
    r, f = regime("typical", 333, 700, 1.0)
    check(r, f, sign)


def test_float64_takes_the_exact_path():
    r, f = regime("typical", 300, 517, 1.0)
    paths = check(r.double(), f.double(), 1.0, tol=1e-12)
    assert paths[FACT_S] == paths[FACT_P] == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_accumulate_in_float(dtype):
    r, f = regime("typical", 300, 517, 1.0)
    r, f = r.to(dtype), f.to(dtype)
    check(r, f)  # the reference uses the rounded half values, so float accuracy applies


@pytest.mark.parametrize("where", ["fake", "real"])
def test_nan_propagates_to_its_row_or_column_only(where):
    r, f = regime("typical", 100, 3000, 1.0)
    if where == "fake":
        f[2500] = float("nan")  # tenth chunk; the others stay factorised
    else:
        r[70] = float("nan")
    loss, row, col, paths = emulate(r, f)
    _, wr, wc = want(r, f)
    assert torch.isnan(loss)
    assert torch.equal(torch.isnan(row), torch.isnan(wr)) and torch.equal(torch.isnan(col), torch.isnan(wc))
    for got, exp in ((row, wr), (col, wc)):
        finite = ~torch.isnan(exp)
        if finite.any():
            assert rel(got[finite], exp[finite]) <= 1e-5
    assert paths[FACT_P] > 0 and paths[EXACT] > 0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_infinite_logits(sign):
    r = torch.tensor([0.0, float("inf"), -1.0, float("-inf")])
    f = torch.tensor([1.0, 2.0, float("-inf"), 0.5] * 3)
    loss, row, col, _ = emulate(r, f, sign)
    wl, wr, wc = want(r, f, sign)
    # inf - inf pairs are NaN in float64 as in float32: compare NaN masks and the rest
    for got, exp in ((loss.reshape(1), wl.reshape(1)), (row, wr), (col, wc)):
        assert torch.equal(torch.isnan(got), torch.isnan(exp))
        ok = ~torch.isnan(exp)
        torch.testing.assert_close(got[ok].double(), exp[ok], rtol=1e-6, atol=1e-6)


def test_deterministic():
    r, f = regime("wide", 1500, 2100, 1.0)
    a, b = emulate(r, f), emulate(r, f)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_same_z_after_the_row_column_swap():
    # N > M swaps rows and columns (rows = -sign f, columns = -sign r): same pairs.
    r, f = regime("typical", 700, 300, 1.0)
    l1, row1, col1, _ = emulate(r, f)
    l2, row2, col2, _ = emulate(-f, -r)  # z_ji = -r_i + f_j: the same matrix transposed
    assert rel(l1, l2) <= 1e-6 and rel(row1, col2) <= 1e-6 and rel(col1, row2) <= 1e-6
