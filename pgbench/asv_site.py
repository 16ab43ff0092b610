"""``python -m pgbench asv-publish``: ``asv publish``, then a site that works without network access.

Why: asv 0.6's ``index.html`` loads jQuery, flot (with its time, selection and
categories plugins), flot-orderbars, stupidtable, blueimp-md5 and bootstrap from
CDNs; without network access the page reports a load failure and draws nothing.
``benchmarks/asv-static/`` holds local copies of those files (MIT licensed; its
``SOURCES.json`` names, per CDN URL, the file and the npm package it comes from).

What :func:`publish` does, from the repository holding ``asv.conf.json``:

1. runs ``asv publish`` (the site goes to the configuration's ``html_dir``);
2. copies the files into ``HTML_DIR/vendor/`` and points every ``<script src>`` /
   ``<link href>`` of ``index.html`` that names a CDN URL at its copy.  A tag's
   ``integrity`` hash is kept when the copy has that hash (a byte-identical file)
   and dropped otherwise (flot's unminified source, stupidtable 1.1.3 for 1.0.1).

A CDN URL without a local copy (an asv whose page loads something new) is a
one-line error naming it, raised before the page is changed.  View the site with
``asv preview`` (http://127.0.0.1:8080) or any static HTTP server: browsers refuse
the site's JSON requests from a ``file://`` page.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

STATIC = Path("benchmarks") / "asv-static"
VENDOR = "vendor"
_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
_URL = re.compile(r'\b(src|href)="(https?://[^"]+)"')
_INTEGRITY = re.compile(r'\s+integrity="([a-z0-9]+)-([^"]+)"')


class SiteError(ValueError):
    """A precondition failed (no asv, no asv.conf.json, a CDN URL without a local copy...)."""


def local_copies(static: Path) -> dict[str, Path]:
    """CDN URL -> local file, from ``static/SOURCES.json``."""
    try:
        entries = json.loads((static / "SOURCES.json").read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise SiteError(f"{static / 'SOURCES.json'}: cannot read the list of local copies ({exc}).") from None
    return {e["url"]: static / e["file"] for e in entries}


def _sri(path: Path, algorithm: str) -> str:
    """The subresource-integrity digest of a file (base64 of its ``algorithm`` hash)."""
    return base64.b64encode(hashlib.new(algorithm, path.read_bytes()).digest()).decode()


def localize(html_dir: str | Path, static: str | Path) -> list[str]:
    """Point ``html_dir/index.html``'s CDN tags at copies in ``html_dir/vendor``; returns the URLs replaced.

    Idempotent: a page with no CDN tag left is unchanged.
    """
    html_dir, static = Path(html_dir), Path(static)
    index = html_dir / "index.html"
    if not index.is_file():
        raise SiteError(f"{index}: no published asv site here (run asv publish first).")
    copies = local_copies(static)
    page = index.read_text(encoding="utf-8")
    urls = [m.group(2) for tag in _TAG.findall(page) for m in _URL.finditer(tag)]
    missing = [u for u in urls if u not in copies]
    if missing:
        raise SiteError(f"{index} loads {missing[0]}, which has no local copy in {static}/SOURCES.json "
                        "(a newer asv? add the file there).")

    def rewrite(match: re.Match) -> str:
        tag = match.group(0)
        found = _URL.search(tag)
        if found is None:
            return tag
        copy = copies[found.group(2)]
        tag = tag.replace(found.group(0), f'{found.group(1)}="{VENDOR}/{copy.name}"')
        integrity = _INTEGRITY.search(tag)
        if integrity and _sri(copy, integrity.group(1)) != integrity.group(2):
            tag = tag.replace(integrity.group(0), "")
        return tag

    (html_dir / VENDOR).mkdir(exist_ok=True)
    for url in urls:
        shutil.copyfile(copies[url], html_dir / VENDOR / copies[url].name)
    index.write_text(_TAG.sub(rewrite, page), encoding="utf-8")
    return urls


def html_dir(repo: str | Path) -> Path:
    """The site folder ``asv.conf.json`` of ``repo`` names (asv's own reader: the file has comments)."""
    from asv.util import load_json

    conf = load_json(os.path.join(repo, "asv.conf.json"), js_comments=True)
    return Path(repo) / conf.get("html_dir", "html")


def publish(repo: str | Path = ".") -> tuple[Path, list[str]]:
    """``asv publish`` in ``repo``, then :func:`localize`; returns (site folder, URLs replaced)."""
    repo = Path(repo)
    if not (repo / "asv.conf.json").is_file():
        raise SiteError(f"{repo.resolve()} has no asv.conf.json (give --repo, the folder holding it).")
    if importlib.util.find_spec("asv") is None:
        raise SiteError("asv is not installed (pip install 'pgbench[dev]').")
    static = repo / STATIC
    local_copies(static)                         # fail before publishing when the copies are missing
    proc = subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()[-1]
        raise SiteError(f"asv publish failed in {repo.resolve()}: {last}")
    site = html_dir(repo)
    return site, localize(site, static)


# ----------------------------------------------------------------- CLI adapter (prints)

def setup_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m pgbench asv-publish``."""
    p.add_argument("--repo", default=".", help="the folder holding asv.conf.json (default: .)")


def run_command(args: argparse.Namespace) -> int:
    """Entry point of the CLI command: publish, localize, say how to view."""
    site, urls = publish(args.repo)
    print(f"published {site / 'index.html'} with {len(urls)} local script/style copies (works offline)")
    print(f"view: cd {Path(args.repo).resolve()} && asv preview   (http://127.0.0.1:8080)")
    return 0
