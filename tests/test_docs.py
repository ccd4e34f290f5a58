"""The documentation against the reports: every generated table matches its JSON, a wrong figure
is caught, the user-facing pages carry no internal references, and every command the docs and
the committed reports name exists."""

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docs_tools import tables

REPO = Path(__file__).resolve().parents[1]
DOCS = tables.doc_files(REPO)


def _table_names(path: Path) -> list[str]:
    return [m["name"] for m in tables.MARKER.finditer(path.read_text())]


def test_committed_tables_match_their_json():
    assert tables.stale(REPO) == []


def test_every_table_is_used_in_the_docs():
    used = {name for path in DOCS for name in _table_names(path)}
    assert set(tables.TABLES) <= used


def _temp_checkout(tmp_path: Path) -> Path:
    """README.md and docs/ copied; reports/ and models/ linked (the tables only read them)."""
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    for name in ("reports", "models"):
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docs_tools.tables", "--check", "--root", str(root)],
                          cwd=REPO, capture_output=True, text=True)


def test_a_wrong_figure_fails_the_check_and_the_script_fixes_it(tmp_path):
    root = _temp_checkout(tmp_path)
    readme = root / "README.md"
    text = readme.read_text()
    m = tables.MARKER.search(text)
    assert m, "README.md has no generated table"
    body = m["body"]
    figure = re.search(r"\d+\.\d %", body)
    wrong = body.replace(figure[0], "99.9 %", 1)
    readme.write_text(text.replace(body, wrong, 1))

    failed = _check(root)
    assert failed.returncode == 1
    assert f"README.md: table {m['name']}" in failed.stderr

    fixed = subprocess.run([sys.executable, "-m", "docs_tools.tables", "--root", str(root)],
                           cwd=REPO, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    assert readme.read_text() == text
    assert _check(root).returncode == 0


def test_the_batch_table_gives_each_ray_row_its_own_rounds_ratio():
    """Ray's rows compare with the runs one after another of their own round, as the batch report
    does, not with the first row's (local's round)."""
    import json

    report = json.loads((REPO / "reports/batch/batch.json").read_text())
    text = tables.batch(REPO)
    for key in ("batch_ray_started_before", "batch_ray_own"):
        if key in report:
            e = report[key]
            assert f"{e['x_run']:.2f}x ({100 * e['of_local']:.0f} % of local)" in text
    report_md = (REPO / "reports/batch/batch.md").read_text()
    for key in ("batch_ray_started_before", "batch_ray_own"):
        if key in report:
            assert f"| {report[key]['x_run']:.2f}x (" in report_md


def test_a_missing_report_is_an_error_that_names_it(tmp_path):
    root = _temp_checkout(tmp_path)
    (root / "reports").unlink()
    done = _check(root)
    assert done.returncode == 2
    assert "is missing" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_table_name_is_an_error(tmp_path):
    root = _temp_checkout(tmp_path)
    (root / "docs" / "extra.md").write_text("<!-- table:no-such-table -->\n<!-- /table -->\n")
    done = _check(root)
    assert done.returncode == 2
    assert "no-such-table" in done.stderr


USER_PAGES = [p for p in DOCS if p.name != "developing.md"]
INTERNAL = re.compile(r"\b(issue|session)s? #?\d+|\.\./shared|/work/|/root/|\bcommit [0-9a-f]{7}", re.I)


@pytest.mark.parametrize("path", USER_PAGES, ids=lambda p: p.name)
def test_user_pages_carry_no_internal_references(path):
    hits = [f"{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1) if INTERNAL.search(line)]
    assert hits == []


def test_the_internal_reference_check_catches_one():
    assert INTERNAL.search("measured in session 6 on ../shared/data")
    assert INTERNAL.search("see issue 10")


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(path):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    missing = [link for link in links if "://" not in link and not (path.parent / link).exists()]
    assert missing == []


# `python -m MODULE` and `fer-edge bench SUBCOMMAND`, also where a line break splits them.
COMMAND = re.compile(r"python -m\s+([A-Za-z_][\w.]*\w)|fer-edge bench\s+([a-z][\w-]*)")


def _bench_subcommands() -> set[str]:
    from edge.cli import build_parser

    def subparsers(parser: argparse.ArgumentParser) -> dict:
        return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    return set(subparsers(subparsers(build_parser())["bench"]))


def _runnable(module: str) -> bool:
    """True when `python -m module` would run something: a module with a __main__ block, or a
    package with a __main__ module."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return False
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:
        return _runnable(module + ".__main__")
    return spec.origin is not None and (not spec.origin.endswith(".py") or "__main__" in Path(spec.origin).read_text())


def unknown_commands(text: str, bench: set[str]) -> list[str]:
    """The commands in text that do not exist: a module `python -m` cannot run, or a `fer-edge
    bench` subcommand that is not registered."""
    return [m[0] for m in COMMAND.finditer(text)
            if (m[1] and not _runnable(m[1])) or (m[2] and m[2] not in bench)]


def _committed_reports() -> list[Path]:
    """The committed reports' text files (reports/ is ignored; its committed files are force-added)."""
    listed = subprocess.run(["git", "ls-files", "reports"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.strip()}")
    return [REPO / name for name in listed.stdout.splitlines() if name.endswith((".md", ".json"))]


def test_every_command_in_the_docs_and_the_committed_reports_exists():
    bench = _bench_subcommands()
    found = {f"{path.relative_to(REPO)}: {cmd}" for path in DOCS + _committed_reports()
             for cmd in unknown_commands(path.read_text(), bench)}
    assert sorted(found) == []


def test_the_command_check_catches_a_removed_module_and_subcommand():
    bench = _bench_subcommands()
    assert {"scenes", "photos", "all"} <= bench
    text = ("`python -m benchmarks.speed.macs M` and `fer-edge bench crowd`, but also\n"
            "`python -m\n  benchmarks.report_speed --frames 10` and `fer-edge bench timeline`")
    assert unknown_commands(text, bench) == ["python -m\n  benchmarks.report_speed", "fer-edge bench timeline"]
