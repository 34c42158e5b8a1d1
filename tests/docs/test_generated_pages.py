"""The generated docs pages (CLI, errors, variants, manifest, benchmark results) match what scripts/gen_docs.py
writes from the code and the committed results files: a page that drifts fails here with the command to fix it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import gen_docs  # noqa: E402

pytestmark = pytest.mark.torch  # the CLI page registers `kolite export` and `kolite bench`, which need kolite_export


def test_committed_pages_are_what_the_generator_writes() -> None:
    # A fresh process: the error registry must not see classes that other tests defined.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("runtime", "export", "benchmarks"))}
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_a_hand_edited_page_is_reported(tmp_path: Path) -> None:
    for page, render in gen_docs.PAGES.items():
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text(render(), encoding="utf-8")
    assert gen_docs.drifted(tmp_path) == []
    edited = tmp_path / "docs/reference/variants.md"
    edited.write_text(edited.read_text(encoding="utf-8").replace("int8-static", "int8-fast"), encoding="utf-8")
    (tmp_path / "docs/reference/errors.md").unlink()
    assert gen_docs.drifted(tmp_path) == ["docs/reference/errors.md", "docs/reference/variants.md"]


def test_every_option_of_every_subcommand_is_on_the_cli_page() -> None:
    page = gen_docs.cli_page()
    for name, parser in gen_docs._subcommands().items():
        assert f"## `kolite {name}`" in page
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help") and action.help != "==SUPPRESS==":
                    assert f"`{flag}`" in page, f"kolite {name} {flag} is missing from the CLI page"


def test_benchmark_page_names_the_run_date_and_machine_of_every_results_file() -> None:
    from docs_results import latest_runs

    page = gen_docs._benchmark_results()
    results = REPO / "benchmarks" / "results"
    for path in [*latest_runs(results).values(), *results.glob("loadtest-*.json"), *results.glob("soak-*.json")]:
        assert f"`benchmarks/results/{path.name}`" in page
    run_ids = [line for line in page.splitlines() if "run `" in line or "| `0" in line]
    assert run_ids, "no section names its run id"
