"""README.md and docs/*.md name only files, modules and pages that exist, and the README stays short.

The codebase moves (modules change homes); these checks catch a page still pointing at the old home. They read
text only: no imports of the named modules, nothing that depends on the machine.
"""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

# A repository path as the pages write it: `bench_assets/store/runs.py`, `benchmarks/lm_batching.py`,
# `dbt_metrics/seeds/headline_metrics.csv`. Not part of a longer path (apache_beam/testing/benchmarks/...).
REPO_PATH = re.compile(r"(?<![\w/.-])((?:bench_assets|bench_assets_tests|dbt_metrics|benchmarks|docs)/[\w./<>-]*)")
MODULE = re.compile(r"python -m ((?:bench_assets)[\w.]*)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def named_paths(text: str) -> set[str]:
    # A placeholder (`bench_assets/benchmarks/<name>/`) names a pattern, not a file: check the part before it.
    paths = {match.split("<")[0].rstrip(".") for match in REPO_PATH.findall(text)}
    return {path for path in paths if path.rstrip("/") not in {"", "bench_assets", "benchmarks", "docs"}}


def module_file(module: str) -> Path:
    base = REPO_ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_named_paths_exist(page):
    missing = sorted(path for path in named_paths(page.read_text()) if not (REPO_ROOT / path).exists())
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_named_modules_exist(page):
    missing = sorted(module for module in MODULE.findall(page.read_text()) if not module_file(module).exists())
    assert not missing, f"{page.name} names `python -m` modules that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO_ROOT).as_posix())
def test_links_resolve(page):
    links = [link for link in LINK.findall(page.read_text()) if "://" not in link]
    missing = sorted(link for link in links if not (page.parent / link).exists())
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


def layout_file_names(readme: str) -> set[str]:
    """The file names (`lifecycle.py`, `schema.py`) the README's Layout section lists."""
    layout = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(\w+\.(?:py|yaml|toml|lock))`", layout))


def test_layout_names_files_that_exist():
    project_files = {path.name for folder in ("bench_assets", "bench_assets_tests") for path in (REPO_ROOT / folder).rglob("*")}
    project_files |= {path.name for path in REPO_ROOT.iterdir()}
    names = layout_file_names((REPO_ROOT / "README.md").read_text())
    assert "lifecycle.py" in names
    missing = sorted(names - project_files)
    assert not missing, f"README.md's Layout lists files that do not exist: {missing}"


def test_readme_is_short_and_links_every_page():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    unlinked = [page.name for page in PAGES[1:] if f"(docs/{page.name})" not in readme]
    assert not unlinked, f"README.md does not link these docs pages: {unlinked}"


def test_the_checks_see_a_wrong_path():
    """The patterns find what a stale page would say (the homes these modules had before they moved)."""
    stale = "see `bench_assets/results.py` and run `python -m bench_assets.compare A B`; [x](docs/nowhere.md)"
    assert "bench_assets/results.py" in named_paths(stale)
    assert not (REPO_ROOT / "bench_assets/results.py").exists()
    assert not module_file(MODULE.findall(stale)[0]).exists()
    assert LINK.findall(stale) == ["docs/nowhere.md"]
