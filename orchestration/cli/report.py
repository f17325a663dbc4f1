"""`segments report`: the segment report (one offline HTML page) of a published serving version.

segments report [--version V] [--out FILE] [--serve] [--port 8765] [--host 127.0.0.1] [--open]

Builds the page from the current publication of $SEGMENTS_HOME (`serving/current`, resolved once, so every
table comes from one version even while a run publishes the next) or from `--version V`, a folder name
under `serving/versions/`, checked before anything is opened. Only the version's `bi.duckdb` is read,
read-only: never the warehouse. `--serve` serves the reports of the home over HTTP on 127.0.0.1 until Ctrl-C
(`ReportsHandler`: segment reports and validation reports, nothing else of the home); `--open` opens the page
in the browser. `segments ui` serves the same beside the two UIs, where Dagster's metadata links point.
"""

from __future__ import annotations

import argparse
import re
import sys
import webbrowser
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from orchestration.settings import get_settings

# A version folder's name as the serving publisher writes it (`<UTC time>-<run id[:8]>`), or any other
# plain name: letters, digits, `.`, `_`, `-`, not starting with a dot. No separator, no `..`.
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
REPORT_PAGE = "report.html"  # report.REPORT_FILE: the page's name in a version folder


class VersionError(ValueError):
    """A version the user named, or the current one, that cannot be reported, with the reason."""


def add_parser(sub) -> None:
    r = sub.add_parser("report", help="the segment report: one offline HTML page from the published serving copy")
    r.add_argument("--version", help="a folder name under serving/versions/ (default: the current publication)")
    r.add_argument("--out", type=Path, help="where to write the page (default: report.html in the version folder)")
    r.add_argument("--serve", action="store_true", help="serve the page over HTTP until Ctrl-C")
    r.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    r.add_argument("--port", type=int, default=8765)
    r.add_argument("--open", action="store_true", help="open the page in the web browser")
    r.set_defaults(func=cmd_report)


def resolve_version_dir(serving_dir: Path, version: str | None) -> Path:
    """The folder of `version` under `serving_dir/versions/`, or of the current publication (`current`
    resolved once). A user's version name is checked as a plain name before the file system is touched,
    then must be a directory directly under `versions/`."""
    versions = serving_dir / "versions"
    if version is not None:
        if not VERSION_NAME.match(version) or ".." in version:
            raise VersionError(f"invalid version name {version!r}: a folder name under {versions}")
        if not versions.is_dir() or version not in {
            p.name for p in versions.iterdir() if p.is_dir() and not p.is_symlink()
        }:
            raise VersionError(f"no published version {version!r} in {versions}")
        found = versions / version
    else:
        current = serving_dir / "current"
        if not current.is_symlink() and not current.is_dir():
            raise VersionError(f"no publication in {serving_dir}: run `segments run` first")
        found = current.resolve()
        if found.parent != versions.resolve() or not found.is_dir():
            raise VersionError(f"{current} does not point to a version under {versions}")
    if not (found / "bi.duckdb").is_file():
        raise VersionError(f"{found} has no bi.duckdb: not a complete publication")
    return found


class ReportsHandler(SimpleHTTPRequestHandler):
    """Serves the reports of one home, and nothing else of it (a version folder also holds
    `restricted_activation.duckdb`, the home the warehouse):

        /segments/current/report.html, /segments/<version>/report.html   the segment report of a publication
        /validation/<run id>/index.html, /validation/<run id>/<suite>.html the validation report of a run

    Every part of a path is checked as a plain name before the file system is touched; only existing
    `.html` files under those two roots are served, anything else is a 404."""

    serving_dir: Path
    reports_dir: Path

    def __init__(self, *args, serving_dir: Path, reports_dir: Path, **kwargs):
        self.serving_dir, self.reports_dir = serving_dir, reports_dir
        super().__init__(*args, directory=str(reports_dir), **kwargs)

    def _file(self) -> Path | None:
        parts = self.path.split("?", 1)[0].split("#", 1)[0].strip("/").split("/")
        if len(parts) != 3 or not all(VERSION_NAME.match(p) and ".." not in p for p in parts):
            return None
        root, folder, name = parts
        if not name.endswith(".html"):
            return None
        if root == "segments" and name == REPORT_PAGE:
            try:
                version_dir = resolve_version_dir(self.serving_dir, None if folder == "current" else folder)
            except VersionError:
                return None
            page = version_dir / name
        elif root == "validation":
            page = self.reports_dir / folder / name
        else:
            return None
        return page if page.is_file() else None

    def send_head(self):
        page = self._file()
        if page is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        self.directory = str(page.parent)
        self.path = f"/{page.name}"
        return super().send_head()

    def log_message(self, format, *args):  # quiet: the command prints the URL once
        pass


def reports_server(settings, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server of the reports of `settings`' home (`ReportsHandler`), not started (OSError when the
    port is taken)."""
    handler = partial(ReportsHandler, serving_dir=settings.serving_dir, reports_dir=settings.home / "reports")
    return ThreadingHTTPServer((host, port), handler)


def serve(settings, host: str, port: int, open_browser: bool, version: str) -> int:
    """Serve the reports of the home until Ctrl-C, the segment report of `version` first."""
    try:
        server = reports_server(settings, host, port)
    except OSError as err:
        print(f"error: cannot serve on {host}:{port}: {err.strerror or err}", file=sys.stderr)
        return 2
    url = f"http://{host}:{server.server_address[1]}/segments/{version}/{REPORT_PAGE}"
    print(f"serving the report on {url} (Ctrl-C to stop)")
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Build the report of one publication, print its path; optionally serve or open it."""
    from report import ReportError, build_report

    settings = get_settings()
    try:
        version_dir = resolve_version_dir(settings.serving_dir, args.version)
        page = build_report(version_dir, args.out)
    except (VersionError, ReportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PermissionError as err:
        print(f"error: cannot write {err.filename}: pass --out FILE to write the page elsewhere", file=sys.stderr)
        return 2
    print(page)
    if args.serve:
        return serve(settings, args.host, args.port, args.open, args.version or "current")
    if args.open:
        webbrowser.open(page.resolve().as_uri())
    return 0
