"""The README stays true: its commands are the ones CI runs, and its GANModule example is the tested one."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make train" in readme
    assert re.search(r"^make test$", ci, flags=re.M), ".ci/run must call the README's test command exactly"


def test_readme_subclass_is_the_tested_one_and_short():
    # tests/test_module.py executes the first python block of docs/module.md.
    module_block = python_blocks((ROOT / "docs" / "module.md").read_text())[0]
    assert module_block in python_blocks((ROOT / "README.md").read_text())
    assert len(module_block.strip().splitlines()) < 40


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)\)", readme):
        assert (ROOT / target).exists(), f"README links to missing {target}"
