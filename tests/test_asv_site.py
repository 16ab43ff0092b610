"""The README's asv commands end in a site with data that works offline (pgbench.asv_site).

End to end, in a fresh git repository holding this checkout's ``asv.conf.json`` and
``benchmarks/`` (so HEAD is a commit on ``main``, as in a fresh clone), with an
isolated HOME, the README's commands on a tiny benchmark selection::

    asv machine --yes
    asv run -E existing:same --quick --set-commit-hash HEAD --bench Assign.time_assign
    python -m pgbench asv-publish

then: the results JSON holds a time for every grid point, the published graph JSON
holds the commit's point, and ``index.html`` loads nothing from the network.  A few
seconds.  Without ``--set-commit-hash`` asv saves nothing with an existing
environment: checked too, as the reason the README's command has it.

Also: every CDN URL of the installed asv's page has a local copy, integrity hashes
are kept only for identical copies, and (with Chromium) the offline site draws its
graph.  Skips without git or asv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pgbench import asv_site, backends
from pgbench.asv_site import SiteError

ROOT = Path(__file__).resolve().parent.parent
BENCH = "bench_steps.Assign.time_assign"

pytestmark = [pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
              pytest.mark.skipif(importlib.util.find_spec("asv") is None, reason="asv is not installed")]


def _asv_www() -> Path:
    return Path(importlib.util.find_spec("asv").origin).parent / "www"


def _run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny repository run through the README's asv commands; (repo, env)."""
    tmp = tmp_path_factory.mktemp("asv")
    repo, home = tmp / "repo", tmp / "home"
    home.mkdir()
    repo.mkdir()
    shutil.copy(ROOT / "asv.conf.json", repo)
    shutil.copytree(ROOT / "benchmarks", repo / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".gitignore").write_text(".asv/\n")
    env = {**os.environ, "HOME": str(home), "OMP_NUM_THREADS": "1"}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    _run(git + ["init", "-q", "-b", "main"], repo, env)
    _run(git + ["add", "-A"], repo, env)
    _run(git + ["commit", "-q", "-m", "benchmarks"], repo, env)
    asv = [sys.executable, "-m", "asv"]
    _run(asv + ["machine", "--yes"], repo, env)
    # what the README said before: nothing saved with an existing environment
    _run(asv + ["run", "-E", "existing:same", "--quick", "--bench", BENCH], repo, env)
    assert not list((repo / ".asv" / "results").rglob("*-existing-*.json"))
    _run(asv + ["run", "-E", "existing:same", "--quick", "--set-commit-hash", "HEAD", "--bench", BENCH], repo, env)
    _run([sys.executable, "-m", "pgbench", "asv-publish"], repo, env)
    return repo, env


def test_results_json_has_a_time_for_every_point(published):
    repo, _ = published
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (path,) = (repo / ".asv" / "results").rglob("*-existing-*.json")
    data = json.loads(path.read_text())
    assert data["commit_hash"] == head
    values, params = data["results"][BENCH][:2]
    assert params == [["'layer'", "'duplicates'", "'overestimated_k'", "'minilm_attn_q'"],
                      [f"'{b}'" for b in backends.BACKENDS]]
    timed = [v for v in values if v is not None]          # MiniLM's points are skipped without its package
    assert len(timed) >= 6 and all(0 < v < 60 for v in timed)


def test_published_site_has_the_graph_and_no_network_scripts(published):
    repo, _ = published
    site = repo / ".asv" / "html"
    index = json.loads((site / "index.json").read_text())
    assert BENCH in index["benchmarks"] and index["params"]["branch"] == ["main"]
    (graph,) = [p for p in (site / "graphs").rglob(f"{BENCH}.json") if "summary" not in p.parts]
    (point,) = json.loads(graph.read_text())
    assert point[0] == 0 and sum(v is not None and v > 0 for v in point[1]) >= 6
    page = (site / "index.html").read_text()
    assert "cdn" not in page and 'src="http' not in page and 'href="http' not in page.replace(
        'href="https://github.com/airspeed-velocity/asv/"', "")
    copies = asv_site.local_copies(ROOT / asv_site.STATIC)
    assert sorted(p.name for p in (site / asv_site.VENDOR).iterdir()) == sorted(p.name for p in copies.values())


def test_paper_methods_lead_the_parameter_grid():
    """asv's default graph draws the first 8 curves (4 data sets x 2 methods): fairseq vs PG."""
    spec = importlib.util.spec_from_file_location("asv_bench_common", ROOT / "benchmarks" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    grid = common.methods()
    assert grid[:5] == ["fairseq + fairseq", "pg + pg", "pg + pg + dwc", "kmeans++ + sklearn", "random + faiss"]
    assert len(grid) == len(set(grid)) and sorted(grid[5:]) == grid[5:]
    assert len(common.DATASETS) * 2 == 8


def test_every_cdn_url_of_the_installed_asv_has_a_copy(tmp_path):
    shutil.copy(_asv_www() / "index.html", tmp_path / "index.html")
    urls = asv_site.localize(tmp_path, ROOT / asv_site.STATIC)
    assert len(urls) == 10
    page = (tmp_path / "index.html").read_text()
    assert asv_site.localize(tmp_path, ROOT / asv_site.STATIC) == []          # idempotent
    assert page == (tmp_path / "index.html").read_text()
    # identical copies keep their integrity hash, the others lose it
    assert 'src="vendor/jquery-3.3.1.min.js" integrity="sha256-' in page
    assert 'src="vendor/jquery.flot.js" crossorigin' in page


def test_unknown_cdn_url_is_an_error_before_any_change(tmp_path):
    page = '<html><script src="https://cdn.example.org/new.js"></script></html>'
    (tmp_path / "index.html").write_text(page)
    with pytest.raises(SiteError, match="loads https://cdn.example.org/new.js, which has no local copy"):
        asv_site.localize(tmp_path, ROOT / asv_site.STATIC)
    assert (tmp_path / "index.html").read_text() == page and not (tmp_path / "vendor").exists()
    with pytest.raises(SiteError, match="no published asv site"):
        asv_site.localize(tmp_path / "none", ROOT / asv_site.STATIC)


def test_asv_publish_outside_a_repository_is_a_one_line_error(tmp_path, capsys):
    from pgbench.cli import main

    assert main(["asv-publish", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no asv.conf.json" in err


def test_offline_site_draws_the_graph_in_chromium(published, tmp_path):
    """Served from localhost (as asv preview does), with every other host unreachable."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from test_report_browser import CHROMIUM_FLAGS, _find

    chromium = _find("PGBENCH_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    driver_path = _find("PGBENCH_CHROMEDRIVER", "chromedriver")
    if not chromium or not driver_path:
        pytest.skip("no Chromium / chromedriver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    repo, _ = published
    handler = partial(SimpleHTTPRequestHandler, directory=str(repo / ".asv" / "html"))
    handler.log_message = lambda *a, **k: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.get(f"http://127.0.0.1:{server.server_port}/#{BENCH}")
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "return document.querySelectorAll('#main-graph canvas, .flot-base').length > 0;"))
        assert driver.execute_script("return typeof jQuery.plot === 'function' && typeof md5 === 'function';")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        driver.quit()
        server.shutdown()
