"""The Designing-GANs factory (arXiv 2002.00865; docs/theory.md §1): derivation, checks, parsing, lgans-design.

Convention throughout: the article's, a larger t means more fake, r = q/p.
"""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_gans.cli.design import main as cli_main
from lightning_gans.factory import DesignCheckError, FormulaError, design, parse_formula
from lightning_gans.losses import DesignedLoss

ROOT = Path(__file__).resolve().parents[1]
LOG2 = math.log(2.0)
T = torch.linspace(-6.0, 6.0, 97, dtype=torch.float64)
R = torch.cat([torch.logspace(-3, 3, 61, dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)])


def sp(x):
    return F.softplus(x)


def assert_same_up_to_constant(f, g, x, what):
    diff = (f(x) - g(x)).detach()
    assert torch.isfinite(diff).all(), what
    assert float(diff.max() - diff.min()) < 1e-8, f"{what}: differs by more than a constant"


# The article's table (docs/theory.md §1): (omega, rho, phi, psi (normalised), constants, t grid inside Ω)
T01 = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
TLS = torch.linspace(-0.99, 0.99, 99, dtype=torch.float64)
TABLE = {
    "standard": ("log(r)", "1/(1+exp(t))", lambda t: -sp(t), lambda t: LOG2 - sp(-t), None, T),
    "probability": ("r/(r+1)", "1/t", lambda t: torch.log(1 - t), lambda t: torch.log(t) + LOG2, None, T01),
    "exponential": ("log(r)/2", "exp(-t)", lambda t: -torch.exp(t), lambda t: 1 - torch.exp(-t), None, T),
    # LSGAN with b - a = 2: a = -1, b = 1 (Ω = (-1, 1)) and a shifted pair a = 0, b = 2 (Ω = (0, 2)).
    "lsgan": ("(a+b*r)/(1+r)", "2*(b-t)", lambda t: -(t + 1) ** 2, lambda t: 1 - (t - 1) ** 2, {"a": -1, "b": 1}, TLS),
    "lsgan_shifted": ("(a+b*r)/(1+r)", "2*(b-t)", lambda t: -(t ** 2), lambda t: 1 - (t - 2) ** 2, {"a": 0, "b": 2}, TLS + 1),
}


@pytest.mark.parametrize("row", list(TABLE))
def test_table_row_phi_psi(row):
    omega, rho, phi, psi, consts, t = TABLE[row]
    d = design(omega, rho, constants=consts)
    assert d.numeric == []  # every row has a closed form
    assert_same_up_to_constant(d.phi, phi, t, f"{row}: phi")
    torch.testing.assert_close(d.psi(t), psi(t), rtol=1e-10, atol=1e-10)  # ψ exactly, normalised
    assert abs(float(d.psi(d.omega(torch.tensor(1.0, dtype=torch.float64))))) < 1e-12
    report = d.check()
    assert report.ok and "maximiser" in report.passed
    # ψ'(t) = ρ(t) and φ'(t) = -ω⁻¹(t) ρ(t), by autograd through the torch functions.
    tt = t.clone().requires_grad_(True)
    (dpsi,) = torch.autograd.grad(d.psi(tt).sum(), tt)
    torch.testing.assert_close(dpsi, d.rho(t), rtol=1e-8, atol=1e-10)


def test_domains():
    assert design("log(r)", "1/(1+exp(t))").domain == (-math.inf, math.inf)
    assert design("r/(r+1)", "1/t").domain == (0.0, 1.0)
    assert design("(r-1)/(r+1)", "2*(1-t)").domain == (-1.0, 1.0)
    assert design("2-2/r", "1-t/2").domain == (-math.inf, 2.0)


def d2_of(d, r):
    return d.d2(r).detach()


# Generator variants of the table: (omega, rho, alpha, beta, generator, expected d₂(r) up to an affine
# shift a(r-1) + c)
GENERATORS = {
    # saddle: β = ψ, α = φ, so d₂ = d, the Jensen-Shannon integrand 2 JS - 2 log 2.
    "standard saddle": ("log(r)", "1/(1+exp(t))", None, None, "saddle",
                        lambda r: r * torch.log(2 * r / (1 + r)) - torch.log((1 + r) / 2) - LOG2),
    # the default, nonsat: β = -φ = sp(t), α = 0: d₂ = r sp(log r) = r log(1 + r).
    "standard default": ("log(r)", "1/(1+exp(t))", None, None, "auto", lambda r: r * torch.log(1 + r)),
    "t-generator": ("log(r)", "1/(1+exp(t))", None, "t", "auto", lambda r: r * torch.log(r)),
    "non-saturating": ("log(r)", "1/(1+exp(t))", "softplus(t)", "softplus(t)", "auto", lambda r: (1 + r) * torch.log(1 + r)),
    "exponential beta=e^t": ("log(r)/2", "exp(-t)", None, "exp(t)", "auto", lambda r: r ** 1.5),
    # The article's d₂ = (r-1)²/(r+1) is the LSGAN generator with α = β (its real-data term, constant in q).
    "lsgan alpha=beta": ("(r-1)/(r+1)", "2*(1-t)", "t**2", "t**2", "auto", lambda r: (r - 1) ** 2 / (r + 1)),
    # With α = 0 (the usual generator loss) d₂ = r (r-1)²/(r+1)²: not convex, but minimal at r = 1.
    "lsgan alpha=0": ("(r-1)/(r+1)", "2*(1-t)", None, "t**2", "auto", lambda r: r * (r - 1) ** 2 / (r + 1) ** 2),
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generator_variants_d2(name):
    omega, rho, alpha, beta, generator, d2 = GENERATORS[name]
    d = design(omega, rho, alpha=alpha, beta=beta, generator=generator)
    diff = d2_of(d, R) - d2(R)
    # d₂ is defined up to a(r-1) + c (neither changes ∫ p d₂(q/p)); fit and remove it.
    A = torch.stack([R - 1, torch.ones_like(R)], 1)
    coef = torch.linalg.lstsq(A, diff.unsqueeze(1)).solution
    assert float((diff - (A @ coef).squeeze(1)).abs().max()) < 1e-8, name
    report = d.check()
    gen = [c for c in report.passed if c.startswith("generator")]
    assert gen, report
    if name == "lsgan alpha=0":
        assert gen == ["generator (d2 minimal at r = 1)"]
    else:
        assert gen == ["generator (d2 convex)"]


def test_generator_choice_without_beta():
    # Default ("auto"): nonsat, β = -φ and α = 0, where Conclusion 2 holds (it does for the standard GAN).
    t = torch.linspace(-5, 5, 11, dtype=torch.float64)
    d = design()
    assert d.generator == "nonsat"
    torch.testing.assert_close(d.beta(t), sp(t))  # -φ(t) = sp(t): the non-saturating -log D
    assert float(d.alpha(t).abs().max()) == 0.0
    # "saddle": the generator plays the discriminator's own objective, β = ψ, α = φ.
    s = design(generator="saddle")
    assert s.generator == "saddle" and s.beta is s.psi and s.alpha is s.phi
    assert design(beta="t").generator == "given"
    with pytest.raises(ValueError, match="generator must be"):
        design(generator="minimax")


def test_auto_generator_falls_back_to_saddle_where_nonsat_fails():
    # ω = r + log r: β = -φ gives a d₂ that is neither convex nor minimal at r = 1 (Conclusion 2 fails),
    # so "auto" keeps the discriminator's objective, whose d₂ = d is a divergence.
    with pytest.warns(RuntimeWarning, match="no closed form for phi"):
        auto = design("r+log(r)", "1/(1+exp(t))")
    assert auto.generator == "saddle" and auto.check().ok
    with pytest.warns(RuntimeWarning, match="no closed form for phi"):
        nonsat = design("r+log(r)", "1/(1+exp(t))", generator="nonsat")
    with pytest.raises(DesignCheckError, match=r"\[generator\]"):
        nonsat.check()


# f-GAN family (Nowozin et al. 2016; docs/theory.md §2) through the factory. In f-GAN terms (large v = real) φ = g, ψ = -f*∘g;
# with t = -v (large t = fake) the factory must derive φ(t) = g(-t), ψ(t) = -f*(g(-t)) up to constants.
FGAN = {
    "KL": ("log(r)-1", "exp(-t-1)", lambda v: v, lambda s: torch.exp(s - 1)),
    "reverse KL": ("log(r)", "1", lambda v: -torch.exp(-v), lambda s: -1 - torch.log(-s)),
    "Pearson": ("2-2/r", "1-t/2", lambda v: v, lambda s: s * s / 4 + s),
    "Hellinger": ("log(r)/2", "exp(-t)", lambda v: 1 - torch.exp(-v), lambda s: s / (1 - s)),
    "Jensen-Shannon": ("log(r)", "1/(1+exp(t))", lambda v: LOG2 - sp(-v), lambda s: -torch.log(2 - torch.exp(s))),
}


@pytest.mark.parametrize("name", list(FGAN))
def test_fgan_family_through_factory(name):
    omega, rho, g, fstar = FGAN[name]
    d = design(omega, rho)
    t = torch.linspace(-1.5, 1.5, 31, dtype=torch.float64)  # inside every Ω here (Pearson: t < 2)
    assert_same_up_to_constant(d.phi, lambda t: g(-t), t, f"{name}: phi")
    assert_same_up_to_constant(d.psi, lambda t: -fstar(g(-t)), t, f"{name}: psi")
    assert d.check().ok


# ------------------------------------------------------------------ check failures
def test_check_fails_non_increasing_omega():
    with pytest.raises(DesignCheckError) as e:
        design("-log(r)", "1/(1+exp(t))").check()
    assert e.value.condition == "omega increasing" and e.value.variable == "r"
    assert "omega increasing" in str(e.value) and "r = 0.00" in str(e.value)


def test_check_fails_omega_with_a_maximum():
    # ω(r) = r e^{-r} rises to r = 1 and falls after: the failure is reported just past r = 1.
    # (This once raised while choosing the default generator, before check() could say why.)
    with pytest.warns(RuntimeWarning, match="no closed form for phi"):  # ω⁻¹ would need LambertW
        d = design("r*exp(-r)", "1")
    with pytest.raises(DesignCheckError) as e:
        d.check()
    assert e.value.condition == "omega increasing" and 1.0 <= e.value.value < 1.2


def test_check_fails_rho_not_positive():
    with pytest.raises(DesignCheckError) as e:
        design("log(r)", "t").check()
    assert e.value.condition == "rho positive" and e.value.variable == "t" and e.value.value <= 0
    assert "rho positive" in str(e.value) and "t = -" in str(e.value)


def test_check_rho_underflow_is_not_a_failure():
    # exp(-exp(t)) is 0.0 in float64 from t ≈ 6.6 on, but positive: re-evaluated exactly, it passes.
    with pytest.warns(RuntimeWarning, match="no closed form for psi"):  # ψ = -Ei(-e^t): no torch form
        d = design("log(r)", "exp(-exp(t))")
    assert float(d.rho(torch.tensor(7.0, dtype=torch.float64))) == 0.0
    assert d.check().ok


def test_check_fails_bad_beta():
    with pytest.raises(DesignCheckError) as e:
        design(beta="-t").check()  # d₂(r) = -r log r: concave, below d₂(1) for r > 1
    assert e.value.condition == "generator" and e.value.variable == "r" and e.value.value > 1
    assert "minimal at r = 1" in str(e.value)


def test_check_fails_beta_zero():
    with pytest.raises(DesignCheckError, match=r"\[beta nonzero\]"):
        design(beta="0").check()


def test_check_catches_a_wrong_phi():
    # A corrupted pair (φ replaced by a wrong antiderivative) moves the maximiser off ω(r).
    d = design()
    d.phi = lambda t: -2 * F.softplus(torch.as_tensor(t, dtype=torch.float64))
    with pytest.raises(DesignCheckError) as e:
        d.check()
    assert e.value.condition == "maximiser" and e.value.variable == "r"


def test_check_report_collects_all_failures():
    rep = design(beta="0").check(raise_on_fail=False)
    assert not rep.ok and [f.condition for f in rep.failed] == ["beta nonzero"]
    assert "FAILED" in str(rep) and "ok    maximiser" in str(rep)


def test_check_rejects_bad_r_range():
    with pytest.raises(ValueError, match="r_range"):
        design().check(r_range=(2.0, 10.0))


# ------------------------------------------------------------------ numeric fallback
def test_numeric_integration_when_no_closed_form():
    with pytest.warns(RuntimeWarning) as rec:
        d = design("log(r)", "1/(1+exp(t)+t**2)")
    said = {str(w.message) for w in rec}
    assert {f"design: no closed form for {n}; integrating numerically" for n in ("psi", "phi")} <= said
    assert set(d.numeric) == {"psi", "phi"}
    assert "integrated numerically" in d.describe()
    # ψ' = ρ and φ' = -ω⁻¹ ρ hold for the tables (autograd through the Hermite interpolant).
    t = torch.linspace(-4, 4, 41, dtype=torch.float64, requires_grad=True)
    (dpsi,) = torch.autograd.grad(d.psi(t).sum(), t)
    (dphi,) = torch.autograd.grad(d.phi(t).sum(), t)
    rho = d.rho(t.detach())
    torch.testing.assert_close(dpsi, rho, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(dphi, -torch.exp(t.detach()) * rho, rtol=1e-6, atol=1e-8)
    # ψ by quadrature matches an independent trapezoid integral from ω(1) = 0.
    s = torch.linspace(0.0, 3.0, 30001, dtype=torch.float64)
    ref = torch.trapezoid(d.rho(s), s)
    assert abs(float(d.psi(torch.tensor(3.0, dtype=torch.float64))) - float(ref)) < 1e-7
    assert d.check().ok


def test_numeric_phi_when_omega_has_no_inverse():
    # ω(r) = r + log r inverts only through LambertW: φ is tabulated, ψ stays symbolic.
    with pytest.warns(RuntimeWarning, match="no closed form for phi"):
        d = design("r+log(r)", "1/(1+exp(t))")
    assert d.numeric == ["phi"] and d.exprs["psi"] is not None
    assert d.check().ok


# ------------------------------------------------------------------ formula parser
@pytest.mark.parametrize(
    "text, words",
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "attribute access"),
        ("t.real", "attribute access"),
        ("(lambda x: x)(t)", "only calls of named math functions"),
        ("lambda: 1", "lambdas"),
        ("t[0]", "subscripts"),
        ("foo * t", "unknown name"),
        ("open('x')", "unknown function 'open'"),
        ("'abc'", "only numbers"),
        ("t if t > 0 else 1", "conditional expressions"),
        ("2^t", "'^' is not a power"),
        ("9**9**9", "exponent above"),
        ("exp(t, 2)", "exp takes 1 argument"),
        ("exp", "must be called"),
        ("log(r)", "in t only"),
        ("t +", "not a valid formula"),
        ("", "empty formula"),
    ],
)
def test_parser_rejects_code(text, words):
    with pytest.raises(FormulaError) as e:
        parse_formula(text, ("t",), what="rho")
    assert words in str(e.value) and str(e.value).startswith("rho:")


def test_parser_rejects_code_through_design():
    with pytest.raises(FormulaError, match="omega: attribute access"):
        design(omega="__import__('os').getcwd()")
    with pytest.raises(FormulaError, match="beta: unknown function '__import__'"):
        design(beta="__import__('os')")


def test_parser_accepts_math():
    e = parse_formula("0.5*log(r) + sqrt(r)**2 - pi*e/E", ("r",), what="omega")
    assert e.free_symbols == {parse_formula("r", ("r",))}
    t = parse_formula("t", ("t",))
    assert float(parse_formula("sigmoid(t) + sp(-t)", ("t",)).subs(t, 0)) == pytest.approx(0.5 + LOG2)
    assert float(parse_formula(2)) == 2.0
    with pytest.raises(FormulaError, match="constant 'a' must be a finite number"):
        parse_formula("a*t", constants={"a": "1"})


# ------------------------------------------------------------------ losses from designs
def test_design_loss_uses_library_convention():
    # The design is in the article's t (larger = fake); its loss in the library's T = -t (larger = real).
    loss = DesignedLoss(design())
    real, fake = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, -3.0])  # library: real large, fake small
    assert float(loss.d_loss(real, fake)) < float(loss.d_loss(fake, real))
    # L_D = -mean φ(-T_r) - mean ψ(-T_f) with φ(t) = -sp(t), ψ(t) = log 2 - sp(-t), written out:
    want = sp(-real).mean() - (LOG2 - sp(fake)).mean()
    torch.testing.assert_close(loss.d_loss(real, fake), want)


def test_failed_design_is_not_trained_unless_overridden():
    with pytest.raises(DesignCheckError):
        DesignedLoss(design(beta="-t"))
    with pytest.warns(UserWarning, match="fails its check"):
        loss = DesignedLoss(design(beta="-t"), allow_failed_check=True)
    assert torch.isfinite(loss.g_loss(torch.zeros(3), torch.ones(3)))


# ------------------------------------------------------------------ lgans-design
def test_cli_writes_png_and_prints_verdict(tmp_path, capsys):
    out = tmp_path / "d.png"
    rc = cli_main(["--omega", "0.5*log(r)", "--rho", "exp(-t)", "--beta", "exp(t)", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "check: PASSED" in text
    assert "phi(t)   = -exp(t)" in text and "psi(t)   = 1 - exp(-t)" in text
    assert "Omega    = (-inf, inf)" in text and "d(r)" in text and "d2(r)    = r**(3/2)" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_cli_failed_check_exits_nonzero(tmp_path, capsys):
    out = tmp_path / "bad.png"
    rc = cli_main(["--beta=-t", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 1 and "check: FAILED" in text and "[generator]" in text and "r = 1000" in text
    assert out.exists()  # a failing design is still plotted


def test_cli_rejects_code(tmp_path, capsys):
    rc = cli_main(["--rho", "__import__('os')", "--out", str(tmp_path / "x.png")])
    assert rc == 2 and "unknown function '__import__'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_cli_as_module_with_constants(tmp_path):
    out = tmp_path / "ls.png"
    cmd = [sys.executable, "-m", "lightning_gans.cli.design", "--omega", "(a+b*r)/(1+r)", "--rho", "2*(b-t)",
           "--const", "a=-1", "--const", "b=1", "--beta", "t**2", "--out", str(out)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr
    assert "Omega    = (-1, 1)" in p.stdout and "generator (d2 minimal at r = 1)" in p.stdout
    assert out.exists()


def test_d_is_minimal_at_one_for_every_table_row():
    for omega, rho, _, _, consts, _ in TABLE.values():
        d = design(omega, rho, constants=consts)
        vals = d.d(R).detach()
        assert np.all(np.isfinite(vals.numpy()))
        assert float(vals.min()) == pytest.approx(float(vals[-1]), abs=1e-12)  # the last entry of R is r = 1
        assert bool((vals[R != 1] > vals[-1]).all())


# ------------------------------------------------------------------ lgans-design rough edges (issue 12)
def test_cli_formula_may_start_with_a_minus(tmp_path, capsys):
    # argparse alone reads "-log(r)" as an option ("expected one argument"); the CLI glues the value on.
    rc = cli_main(["--omega", "-log(r)", "--rho", "-1/(t-5)", "--out", str(tmp_path / "m.png")])
    text = capsys.readouterr().out
    assert rc == 1 and "omega(r) = -log(r)" in text and "rho(t)   = -1/(t - 5)" in text


def test_cli_decreasing_omega_prints_the_failure_not_nonsense(tmp_path, capsys):
    rc = cli_main(["--omega", "-log(r)", "--out", str(tmp_path / "dec.png")])
    text = capsys.readouterr().out
    assert rc == 1 and "[omega increasing]" in text and "check: FAILED" in text
    # Nothing derived from a decreasing ω is printed: its "Ω" was (inf, -inf), and φ, ψ, d mean nothing.
    assert "Omega" not in text and "inf" not in text and "phi(t)" not in text and "d(r)" not in text


def test_cli_prints_phi_psi_as_they_read_on_the_domain(tmp_path, capsys):
    # Probability form, Ω = (0, 1): sympy's antiderivative is log|t - 1|; on Ω that is log(1 - t).
    rc = cli_main(["--omega", "r/(r+1)", "--rho", "1/t", "--out", str(tmp_path / "p.png")])
    text = capsys.readouterr().out
    assert rc == 0 and "Abs" not in text
    assert "phi(t)   = log(1 - t)" in text and "psi(t)   = log(t) + log(2)" in text
    assert "beta(t) = -log(1 - t)" in text  # the default (nonsat) generator: β = -φ


def test_on_domain_is_only_a_display_rewrite():
    d = design("r/(r+1)", "1/t")
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    # The shown expression equals the derived function on Ω (the rewrite changes no value there).
    shown = d.on_domain(d.exprs["phi"])
    vals = torch.tensor([float(shown.subs(parse_formula("t"), float(x))) for x in t], dtype=torch.float64)
    torch.testing.assert_close(vals, d.phi(t))
