"""Every table and figure the README quotes equals what its committed record holds."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def table_after(text: str, heading: str) -> list[str]:
    """The markdown table rows (header excluded) of the first table after `heading`."""
    part = text[text.index(heading):]
    lines = [ln for ln in part.splitlines() if ln.startswith("|")]
    start = next(i for i, ln in enumerate(part.splitlines()) if ln.startswith("|"))
    rows = []
    for ln in part.splitlines()[start:]:
        if not ln.startswith("|"):
            break
        rows.append(ln)
    assert lines, heading
    return rows[2:]  # header and separator


def cells(row: str) -> list[str]:
    return [c.strip().strip("*") for c in row.strip("|").split("|")]


def test_quality_table_is_the_committed_one():
    committed = (ROOT / "benchmarks/results/quality/quality.md").read_text().splitlines()
    rows = table_after(README, "### Quality of the default runs")
    assert rows and all(r in committed for r in rows), "README quality table differs from quality.md"
    summary = json.loads((ROOT / "benchmarks/results/quality/summary.json").read_text())
    r = summary["ring8/rsgan"]["high_quality_fraction"]
    assert f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f} %" in README


def test_benchmark_table_rows_are_in_the_linked_record():
    section = README[README.index("## Kernel benchmark"):]
    record = ROOT / re.search(r"\((benchmarks/results/[^)]+\.md)\)", section).group(1)
    full = {}
    for row in record.read_text().splitlines():
        c = cells(row)
        if len(c) > 10 and c[0] == "cpu":
            full[(c[1], c[2], c[3], c[4])] = c  # dtype, op, size, pass
    assert full, f"no table in {record}"
    for row in table_after(README, "## Kernel benchmark"):
        op, size, fused, eager, compile_, r_eager, r_compile = cells(row)[:7]
        size_key = {"4096 × 4096": "4Kx4K", "8192 × 8192": "8Kx8K", "1024 × 1024": "1Kx1K"}.get(size, size.split(" ")[0])
        c = full[("float32", op, size_key, "fwd+bwd")]
        for quoted, stored in ((r_eager, c[8]), (r_compile, c[9])):  # the README rounds the record's ratios
            q, v = quoted.rstrip("×x"), float(stored.rstrip("×x"))
            decimals = len(q.split(".")[1]) if "." in q else 0
            assert abs(float(q) - v) <= 0.5 * 10 ** -decimals + 1e-9, (op, size, quoted, stored)
        for quoted, stored in ((fused, c[5]), (eager, c[6]), (compile_, c[7])):
            assert abs(float(quoted) / float(stored.split()[0]) - 1) < 0.01, (op, size, quoted, stored)


def test_the_default_run_and_train_step_figures_are_the_recorded_ones():
    default = json.loads((ROOT / "benchmarks/results/default_run.json").read_text())
    assert f"**{default['wall_s']} s**" in README and default["commit"] in README
    assert f"{100 * default['metrics']['high_quality_fraction']:.1f} % high quality" in README
    step = json.loads((ROOT / "benchmarks/results/cpu_2026-12-02_train_step_s5.json").read_text())
    assert f"**{step['ratio']:.2f}×**" in README
    assert f"{step['module_batches_per_s']:.1f} vs {step['hand_batches_per_s']:.1f} batches/s" in README
    assert f"batch at {step['floor_ratio']:.2f}×" in README  # Lightning's floor, from the same run


def test_the_load_and_idleness_claims_match_the_records():
    section = README[README.index("## Kernel benchmark"):]
    record = (ROOT / re.search(r"\((benchmarks/results/[^)]+\.md)\)", section).group(1)).read_text()
    load = float(re.search(r"load average ([\d.]+)", record).group(1))
    quoted = re.search(r"load average ([\d.]+) at its start", section)
    assert quoted and float(quoted.group(1)) == load
    if load >= 0.5:
        assert "not an idle machine" in section
    default = json.loads((ROOT / "benchmarks/results/default_run.json").read_text())
    text = (ROOT / "benchmarks/results/default_run.md").read_text()
    assert f"**{default['wall_s']} s**" in text and default["commit"] in text
    assert ("NOT an idle machine" in text) == (not default["idle"])
    assert default["idle"] == (default["load_avg_1m_start"] < 0.5)


def test_digits_table_is_the_committed_one():
    committed = (ROOT / "benchmarks/results/digits/digits.md").read_text().splitlines()
    rows = table_after(README, "### Image GANs on digits")
    assert rows and all(r in committed for r in rows), "README digits table differs from digits.md"
    summary = json.loads((ROOT / "benchmarks/results/digits/summary.json").read_text())["runs"]
    assert {cells(r)[0] for r in rows} - {"real test split vs training split"} == set(summary)


def test_tuning_and_gradient_variance_tables_are_the_committed_ones():
    cli = (ROOT / "docs/cli.md").read_text()
    for record, heading in (("tuning.md", "### Tuning grid25"), ("grad_variance.md", "### Paired vs all-pairs")):
        committed = (ROOT / "benchmarks/results/quality" / record).read_text().splitlines()
        section = cli[cli.index(heading):]
        rows = [ln for ln in section.splitlines() if ln.startswith("|")]
        rows = rows[:next((i for i in range(1, len(rows)) if rows[i].startswith("| run |")), len(rows))]
        assert rows and all(r in committed for r in rows[:20]), f"docs/cli.md's table differs from {record}"
