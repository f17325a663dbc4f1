"""The segment report: numbers on the page, "none yet" notes, escaping, no customer ids, determinism, and the
`segments report` command's version checks (a small bi.duckdb from tests/report/fixtures.py)."""

from __future__ import annotations

import argparse
import html
import re
import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestration.cli import report as report_cli
from report import ReportError, build_report
from tests.report import fixtures


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


def _text(fragment: str) -> str:
    """The text a reader sees: block elements apart, inline ones run on, spaces collapsed."""
    spaced = re.sub(r"</?(?:p|div|ul|ol|li|h[1-4]|tr|td|th|table|figure|figcaption)\b[^>]*>", " ", fragment)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", spaced))).strip()


def _rows(fragment: str) -> list[list[str]]:
    """Every table row of `fragment` as the text of its cells (th and td)."""
    return [
        [_text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", fragment, flags=re.S)
    ]


def _row(fragment: str, *first: str) -> list[str]:
    """The first row whose leading cells are `first`."""
    for row in _rows(fragment):
        if row[: len(first)] == list(first):
            return row
    raise AssertionError(f"no row starting {first} in {_rows(fragment)}")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """One publication for the tests that only read it (writing one takes a tenth of a second)."""
    return fixtures.write_publication(tmp_path_factory.mktemp("home") / "serving")


@pytest.fixture(scope="module")
def page(published) -> str:
    """Its page, built once into the version folder (the default place)."""
    path = build_report(published)
    assert path == published / "report.html"
    return path.read_text(encoding="utf-8")


def _build(version_dir: Path) -> str:
    return build_report(version_dir).read_text(encoding="utf-8")


def test_header_and_profiles_show_the_publication_numbers(page):
    assert fixtures.VERSION in page and fixtures.RUN2 in page
    assert "published 2026-01-08 10:05:00 UTC" in page
    assert "<strong>6</strong> customers" in page
    profiles = _section(page, "profiles")
    # run 2's profile of Loyal: 2 customers of 6, AOV 1234.5, 3.25 orders, churn 43.21%
    loyal = _row(profiles, "Loyal")
    assert loyal[1:5] == ["2", "33.3%", "1,234.50", "3.2"]
    assert loyal[5] == "987.65" and loyal[6] == "43.2%"
    assert _row(profiles, "Not profiled")[6] == "\u2013"  # not predicted: no churn risk
    assert f"Run {fixtures.RUN2[:8]}" in _text(profiles)


def test_sizes_now_and_over_the_two_runs(page):
    sizes = _section(page, "sizes")
    assert "2 (33.3%)" in sizes  # Champions now
    assert "(2 runs; date, UTC)" in sizes
    # the line chart's points: Champions went from 1 to 2, Loyal from 3 to 2
    assert "Champions, 2026-01-01: 1</title>" in sizes and "Champions, 2026-01-08: 2</title>" in sizes
    assert "Loyal, 2026-01-01: 3</title>" in sizes and "Loyal, 2026-01-08: 2</title>" in sizes


def test_rules_in_plain_words(page):
    rules = _text(_section(page, "rules"))
    assert "Champions 2 customers: recency score 5 and frequency score 4\u20135" in rules
    assert "Likely to churn 3 customers: churn probability at least 0.6" in rules
    # behavioural: the surrogate tree's leaves from the reasons, in words, under the segment most of their
    # customers are in; the customer the clustering placed elsewhere is counted, not given a rule of its own
    assert (
        "Store regulars 3 customers: any of days since the last activity at most 179.5 and share of orders in a "
        "store over 22% 3 of the 4 customers it matches Typical: high share store"
    ) in rules
    assert (
        "Discount seekers 2 customers: any of share of orders with a discount over 59% 1 of the 1 customer it "
        "matches 1 customer placed here by the model although the rules point to another segment"
    ) in rules


def test_transition_matrix_and_largest_moves(page):
    moves = _section(page, "transitions")
    assert "22 of 221 customers changed segment" in _text(moves)
    assert _row(moves, "Loyal", "Champions") == ["Loyal", "Champions", "17", "12.0%"]  # 17 of 142 Loyal
    matrix = _row(moves, "Loyal")  # from Loyal to: Champions, Loyal, At Risk, Not profiled, total
    assert matrix[1:] == ["17", "120", "5", "\u00b7", "142"]
    assert "None yet: moves appear from the second run on." in moves  # behavioural, predictive


def test_alerts_outbox_and_lift(page):
    playbooks = _section(page, "playbooks")
    alert = _row(playbooks, "valuable_customer_slipping")
    assert alert[2] == "Loyal \u2192 At Risk" and alert[4] == "2" and alert[6] == "2,000.00"
    winback = _row(playbooks, "winback_email", "email")
    assert winback[6:10] == ["7", "5", "2", "28.6%"]
    assert _row(playbooks, "vip_sms", "sms")[6:9] == ["3", "3", "0"]
    lift = _row(playbooks, "winback_email", "measured")
    assert lift[4] == "+12.3 pts [+5.0, +19.6]"
    assert _row(playbooks, "vip_sms", "too few holdout customers (< 30) to say")[3] == "3"


def test_predictive_tiers(page):
    predictive = _section(page, "predictive")
    assert "5 of 6 customers predicted" in _text(predictive)
    assert _row(predictive, "High risk (at least 60%)")[1:3] == ["3", "60.0%"]
    assert _row(predictive, "Low risk (under 30%)")[1] == "2"
    assert _row(predictive, "profiling objection") == ["profiling objection", "1"]


def test_first_delivery_empty_tables_say_none_yet(tmp_path):
    version = fixtures.write_publication(
        tmp_path / "serving", empty={"segments.segment_transitions", "segments.segment_alerts"}
    )
    page = _build(version)
    assert _text(_section(page, "transitions")).count("None yet: moves appear from the second run on.") == 3
    assert "None yet: no customer crossed an alert" in _text(_section(page, "playbooks"))


def test_missing_tables_say_none_yet(tmp_path):
    missing = {
        "segments.segment_transitions",
        "segments.segment_alerts",
        "segments.segment_actions",
        "segments.playbook_lift",
        "segments.customer_predictions",
        "segments.segment_membership_history",
        "segments.segment_profiles",
        "segments.segment_definitions",
        "serving.publication",
        "reporting.customers",
    }
    page = _build(fixtures.write_publication(tmp_path / "serving", drop=missing))
    text = _text(page)
    for note in (
        "None yet: this publication has no membership history.",
        "None yet: this publication has no segment profiles.",
        "None yet: this publication has no segment transitions.",
        "None yet: this project publishes no alerts.",
        "None yet: this project publishes no playbook actions.",
        "None yet: this project publishes no lift measurement.",
        "None yet: this project publishes no predictions.",
    ):
        assert note in text
    # without serving.publication the manifest names the run; the customers are counted from the segments
    assert fixtures.RUN2 in page and "<strong>6</strong> customers" in page
    assert "Champions 2 customers: any of" in text  # rules from the reasons alone


def test_not_a_publication(tmp_path):
    with pytest.raises(ReportError, match="no bi.duckdb"):
        build_report(tmp_path)


def test_segment_names_are_escaped(tmp_path):
    evil = '<script>alert("x")</script>'
    page = _build(fixtures.write_publication(tmp_path / "serving", champions_name=evil))
    assert "<script" not in page.lower()
    assert html.escape(evil) in page
    assert page.count(html.escape(evil)) >= 5  # bars, lines, profiles, rules, matrix, moves


def test_no_customer_id_on_the_page(page):
    for customer in fixtures.CUSTOMER_IDS:
        assert customer not in page
    assert "cus_" not in page


def test_the_same_publication_gives_the_same_bytes(published, tmp_path):
    first = build_report(published, tmp_path / "a.html").read_bytes()
    second = build_report(published, tmp_path / "b.html").read_bytes()
    assert first == second
    assert not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------------ command


def _run(argv: list[str], home: Path, monkeypatch) -> int:
    monkeypatch.setenv("SEGMENTS_HOME", str(home))
    monkeypatch.delenv("SEGMENTS_PROJECT", raising=False)
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv])
    return args.func(args)


@pytest.mark.parametrize("name", ["../x", "..", "x/../../y", "/etc", ".hidden", "a\\b", ""])
def test_a_version_name_must_be_a_plain_folder_name(tmp_path, name):
    serving = tmp_path / "serving"
    (serving / "versions" / "v1").mkdir(parents=True)
    (serving / "versions" / "v1" / "bi.duckdb").touch()
    (serving / "x").mkdir()  # a folder the traversal would reach
    (serving / "x" / "bi.duckdb").touch()
    with pytest.raises(report_cli.VersionError, match="invalid version name"):
        report_cli.resolve_version_dir(serving, name)
    assert report_cli.resolve_version_dir(serving, "v1") == serving / "versions" / "v1"


def test_a_version_must_exist_under_versions(published):
    serving = published.parent.parent
    with pytest.raises(report_cli.VersionError, match="no published version"):
        report_cli.resolve_version_dir(serving, "20990101T000000000000Z-00000000")
    assert report_cli.resolve_version_dir(serving, fixtures.VERSION) == serving / "versions" / fixtures.VERSION
    assert report_cli.resolve_version_dir(serving, None) == (serving / "versions" / fixtures.VERSION).resolve()


def test_command_rejects_a_traversal_and_a_missing_publication(tmp_path, monkeypatch, capsys):
    assert _run(["--version", "../x"], tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err
    assert "invalid version name '../x'" in err and err.count("\n") == 1
    assert _run([], tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no publication in") and err.count("\n") == 1


def test_command_builds_the_current_publication(published, page, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out" / "page.html"
    assert _run(["--out", str(out)], published.parent.parent.parent, monkeypatch) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text(encoding="utf-8") == page


def test_the_server_serves_the_reports_and_nothing_else(published, page):
    """Segment reports by version (or current) and validation reports by run; never the data beside them."""
    serving = published.parent.parent
    reports = serving.parent / "reports"
    (reports / "run-1").mkdir(parents=True)
    (reports / "run-1" / "index.html").write_text("<p>validation</p>")
    (reports / "run-1" / "suite.json").write_text("{}")
    handler = partial(report_cli.ReportsHandler, serving_dir=serving, reports_dir=reports)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for path, body in (
            ("/segments/current/report.html", page),
            (f"/segments/{published.name}/report.html", page),
            ("/validation/run-1/index.html", "<p>validation</p>"),
        ):
            with urllib.request.urlopen(f"{base}{path}", timeout=5) as response:
                assert response.status == 200 and response.read().decode() == body, path
        for path in (
            "/",
            f"/segments/{published.name}/bi.duckdb",
            f"/segments/{published.name}/manifest.json",
            f"/segments/{published.name}/restricted_activation.duckdb",
            "/segments/../report.html",
            "/segments/nope/report.html",
            "/validation/run-1/suite.json",
            "/validation/../serving/bi.duckdb",
            "/validation/run-1/../../warehouse.html",
        ):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{base}{path}", timeout=5)
            assert err.value.code == 404, path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
