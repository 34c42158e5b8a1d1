"""The docs' code blocks run: every ```python block of every page (in page order, one namespace per page), every
`kolite predict` / `kolite info` / `kolite label` line of the ```bash blocks, and each bash block that starts
`kolite serve`: the server is started as written (on a free port) and the block's `curl` lines are sent to it. All
against tiny artifacts named as the docs name the seeds. A block that cannot run here (it needs the hub or a
cluster) is preceded by `<!-- not run: reason -->`, and says why."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import free_port

# Copies artifacts, starts servers and labels a whole data set: `./kolite.sh docs` and the full run, not the fast lane.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>\w*)\n(?P<code>.*?)\n```", re.S)
NOT_RUN = re.compile(r"<!-- not run: (?P<reason>[^>]+) -->")
CLI_LINE = re.compile(r"^kolite (predict|info|label) ")
# The docs name artifacts as `kolite export --all-seeds` does; the tiny stand-ins play them.
ARTIFACTS = {"000-koelectra-small-v3-nsmc": "000", "004-koelectra-small-v3-modu-ner": "004"}
PREAMBLE = (
    'texts = ["영화 정말 재밌어요", "최악의 영화"]\n'
    'long_review = "이 영화는 배우들의 연기가 정말 좋았다. " * 80\n'
)


def blocks(page: Path, lang: str) -> list[tuple[str, str | None]]:
    """(code, reason it is not run or None) of each block of ``lang`` in ``page``."""
    found = []
    for match in FENCE.finditer("\n" + page.read_text(encoding="utf-8")):
        if match["lang"] == lang:
            skip = NOT_RUN.search(match["before"])
            found.append((match["code"], skip["reason"] if skip else None))
    return found


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_artifact: Callable[[str], Path]) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    (folder / "artifacts").mkdir()
    for name, seed in ARTIFACTS.items():
        # Copies, not links: the server names a model after its resolved folder.
        shutil.copytree(tiny_artifact(seed), folder / "artifacts" / name)
    (folder / "reviews.csv").write_text("id,text\n1,영화 정말 재밌어요\n2,\n3,최악의 영화\n", encoding="utf-8")
    return folder


def _pages_with(lang: str) -> list[Path]:
    return [page for page in PAGES if any(reason is None for _, reason in blocks(page, lang))]


@pytest.mark.parametrize("page", _pages_with("python"), ids=lambda p: str(p.relative_to(REPO)))
def test_python_blocks_run(page: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {}
    exec(PREAMBLE, namespace)
    ran = 0
    for code, reason in blocks(page, "python"):
        if reason is None:
            exec(compile(code, f"{page.name} python block", "exec"), namespace)
            ran += 1
    assert ran > 0


def _cli_lines() -> list[tuple[Path, str]]:
    lines = []
    for page in PAGES:
        for code, reason in blocks(page, "bash"):
            if reason is None:
                joined = re.sub(r"\\\n\s*", " ", code)  # shell line continuations
                lines += [(page, line.split("  #")[0].strip()) for line in joined.splitlines() if CLI_LINE.match(line)]
    return lines


def _runnable(line: str) -> bool:
    # A synopsis (`kolite info ARTIFACT [--json]`) shows the options' shapes; it is not a command to run.
    return "[" not in line and not re.search(r"\b[A-Z]{4,}(_[A-Z]+)?\b", line.replace("KOLITE_SHARED", ""))


@pytest.mark.parametrize("page,line", [(p, line) for p, line in _cli_lines() if _runnable(line)],
                         ids=lambda value: value if isinstance(value, str) else value.name)
def test_cli_lines_run(page: Path, line: str, workdir: Path, tmp_path: Path) -> None:
    argv = shlex.split(os.path.expandvars(line))[1:]
    if argv[0] == "label":  # each run writes a new file: a re-run must not meet the last one's output
        argv[argv.index("--out") + 1] = str(tmp_path / argv[argv.index("--out") + 1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("runtime", "export", "benchmarks"))}
    result = subprocess.run([sys.executable, "-m", "kolite.cli", *argv], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{page.name}: {line}\n{result.stderr}"


def _serve_blocks() -> list[tuple[Path, str, list[str]]]:
    """(page, its `kolite serve` line, the `curl` lines after it) of each bash block that starts a server."""
    found = []
    for page in PAGES:
        for code, reason in blocks(page, "bash"):
            lines = [line.split("  #")[0].strip() for line in re.sub(r"\\\n\s*", " ", code).splitlines()]
            serve = next((line for line in lines if line.startswith("kolite serve ")), None)
            if reason is None and serve:
                found.append((page, serve, [line for line in lines if line.startswith("curl ")]))
    return found


def _healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "kolite serve exited before it was ready"
        try:
            if httpx.get(f"{url}/health", timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"kolite serve was not healthy within {timeout_s} s")


@pytest.mark.parametrize("page,serve,curls", _serve_blocks(), ids=lambda value: getattr(value, "name", "-"))
def test_serve_blocks_answer_their_curl_lines(page: Path, serve: str, curls: list[str], workdir: Path) -> None:
    assert curls, f"{page.name}: a `kolite serve` block with nothing to send it"
    port = str(free_port())
    argv = [arg for arg in shlex.split(serve) if arg != "&"][1:]
    argv[argv.index("--port") + 1] = port
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("runtime", "export", "benchmarks"))}
    process = subprocess.Popen([sys.executable, "-m", "kolite.cli", *argv], cwd=workdir, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _healthy(f"http://127.0.0.1:{port}", process)
        for curl in curls:
            command = shlex.split(curl.replace("localhost:8080", f"127.0.0.1:{port}"))
            result = subprocess.run([*command, "--fail-with-body", "--noproxy", "*"], capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == 0, f"{page.name}: {curl}\n{result.stdout}{result.stderr}"
            assert json.loads(result.stdout), f"{page.name}: {curl} answered nothing"
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_only_synopses_are_left_out() -> None:
    skipped = [line for _, line in _cli_lines() if not _runnable(line)]
    assert all("[" in line or "ARTIFACT" in line for line in skipped), skipped
    assert len(skipped) < len(_cli_lines())
