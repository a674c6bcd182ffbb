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


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_resolves_inside_the_repository():
    for md in markdown_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # web links and anchors within the page
            path = (md.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{md.relative_to(ROOT)} links to missing {target}"
            assert ROOT in path.parents or path == ROOT, f"{md.relative_to(ROOT)} links outside the repository: {target}"


PRIVATE_NAME = bytes([83, 80, 69, 67]).decode()  # the private math notes' name (as codes: this file cites nothing)


def test_the_repository_stands_alone():
    """No reference to a document that is not in the repository (the project's private spec)."""
    suffixes = {".py", ".md", ".yaml", ".h", ".cpp", ".cu", ".cuh", ".toml", ".txt", ".sh"}
    hits = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.suffix in suffixes and p.is_file() and ".git" not in p.parts and "build" not in p.parts
            and re.search(rf"\b{PRIVATE_NAME}\b", p.read_text(errors="ignore")) and p.name != "test_docs.py"]
    assert not hits, f"files citing the project's private spec (cite docs/theory.md or the paper instead): {hits}"
