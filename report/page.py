"""The segment report as one self-contained HTML page, from a ReportData.

One section per question operations and marketing ask, in this order: which publication is this; how big
is each segment now and over time; what do its customers look like; what puts a customer in it; who moved
where in the latest run; which alerts and actions the playbooks raised and what they achieved; what the
predictions say. The page has no script, loads nothing (styles inline, system fonts, a Content-Security-
Policy that forbids any load or script), escapes every text that comes from data, and is the same bytes
for the same publication (it prints no "generated at").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from html import escape
from typing import Any

from report import svg
from report.data import ReportData, Row
from report.rules import SegmentRule, predictive_rules, reason_words, rfm_rules

FAMILY_TITLES = {"rfm": "RFM", "behavioural": "Behavioural", "lifecycle": "Lifecycle", "predictive": "Predictive"}
FALLBACK_GREYS = ("#b8b8b8", "#8a8a8a", "#d2d2d2", "#6f6f6f")
RISK_COLORS = {"low": "#59a14f", "medium": "#f28e2b", "high": "#e15759"}
DASH = "\u2013"
NONE = "\u00b7"  # an empty cell

STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #222; background: #fafafa; margin: 0; line-height: 1.45; font-size: 15px; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 8px; border-top: 2px solid #4e79a7; }
h3 { font-size: 16px; margin: 22px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; color: #444; }
p, li { max-width: 920px; }
.meta { color: #444; margin: 0 0 12px; }
.meta code, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
  background: #f1f3f5; padding: 1px 4px; border-radius: 3px; }
nav ol { columns: 2; margin: 8px 0 0; padding-left: 22px; }
.howto { background: #f4f7fb; border-left: 4px solid #4e79a7; padding: 8px 16px; margin: 12px 0; }
.howto ul { margin: 4px 0; padding-left: 20px; }
.none { color: #666; font-style: italic; background: #f6f6f6; padding: 6px 10px; border-radius: 4px; }
.note { color: #555; font-size: 13px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 28px; align-items: flex-start; }
.charts figure { margin: 0; }
figcaption { font-size: 13px; color: #555; margin-bottom: 4px; font-weight: 600; }
svg.chart { max-width: 100%; height: auto; overflow: visible; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e6e6e6; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fallback td { color: #777; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
table.matrix th.to { writing-mode: vertical-rl; transform: rotate(180deg); max-height: 150px;
  white-space: nowrap; font-weight: 500; vertical-align: bottom; }
table.matrix td { text-align: right; font-variant-numeric: tabular-nums; min-width: 34px; }
table.matrix td.diag { outline: 1px solid #9aa7b8; outline-offset: -1px; }
ol.rules > li { margin-bottom: 8px; }
ul.alternatives { margin: 2px 0 2px; padding-left: 18px; }
.muted { color: #777; }
.status { display: inline-block; min-width: 12em; }
.tag { font-size: 12px; background: #eef1f5; border-radius: 3px; padding: 0 5px; color: #445; }
footer { margin-top: 40px; font-size: 12px; color: #666; border-top: 1px solid #ddd; padding-top: 8px; }
@media print { body { background: #fff; } main { padding: 0; } h2 { break-before: auto; } }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

SECTIONS = (
    ("sizes", "Segment sizes now and over time"),
    ("profiles", "Profiles per segment"),
    ("rules", "What puts a customer in each segment"),
    ("transitions", "Moves between segments in the latest run"),
    ("playbooks", "Alerts, playbook actions and measured lift"),
    ("predictive", "Predictive tiers: churn risk and expected value"),
)


# ----------------------------------------------------------------------------------------------- formatting


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and not math.isfinite(v))


def fmt_int(v: Any) -> str:
    return DASH if _missing(v) else f"{round(v):,}"


def fmt_num(v: Any, digits: int = 2) -> str:
    return DASH if _missing(v) else f"{v:,.{digits}f}"


def fmt_pct(v: Any, digits: int = 1) -> str:
    return DASH if _missing(v) else f"{v * 100:.{digits}f}%"


def fmt_signed_pct(v: Any) -> str:
    return DASH if _missing(v) else f"{v * 100:+.1f}%"


def fmt_pts(v: Any) -> str:
    return DASH if _missing(v) else f"{v * 100:+.1f} pts"


def fmt_time(v: datetime | None) -> str:
    return DASH if v is None else v.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_date(v: date | None) -> str:
    return DASH if v is None else v.isoformat()


def short_run(run_id: str | None) -> str:
    return DASH if not run_id else str(run_id)[:8]


def family_title(family: str) -> str:
    return FAMILY_TITLES.get(family, family.replace("_", " ").capitalize())


# ----------------------------------------------------------------------------------------------- HTML bits


def _none(text: str) -> str:
    return f'<p class="none">{escape(text)}</p>'


def _table(headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]], *, classes: str = "") -> str:
    """A table; `headers` are (title, numeric); row cells are HTML already escaped. A row whose first
    element is the marker "fallback" is styled as a fallback segment."""
    head = "".join(f"<th{' class=n' if numeric else ''}>{escape(title)}</th>" for title, numeric in headers)
    body = []
    for row in rows:
        cells = list(row)
        cls = ""
        if cells and cells[0] == "fallback":
            cls, cells = ' class="fallback"', cells[1:]
        tds = "".join(
            f"<td{' class=n' if numeric else ''}>{cell}</td>" for cell, (_, numeric) in zip(cells, headers, strict=True)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return (
        f'<div class="wide"><table class="{classes}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _plural(n: int, word: str) -> str:
    return f"{fmt_int(n)} {word}{'' if n == 1 else 's'}"


def _all_of(conditions: Iterable[str]) -> str:
    """Conditions that must all hold, with a quiet "and" between them."""
    return ' <span class="muted">and</span> '.join(escape(c) for c in conditions)


def _swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


class _Page:
    """Helpers bound to one report's data: segment names and colours."""

    def __init__(self, data: ReportData):
        self.data = data
        self.colors: dict[tuple[str, str], str] = {}
        for family in data.families:  # by key, so a segment keeps its colour from one publication to the next
            current = [r for r in data.segments if r["family"] == family]
            fallbacks = sorted(r["key"] for r in current if r["is_fallback"])
            older = {r["key"] for r in data.history or [] if r["family"] == family}
            keys = sorted(({r["key"] for r in current} | older) - set(fallbacks))
            for i, key in enumerate(keys):
                self.colors[(family, key)] = svg.color(i)
            for i, key in enumerate(fallbacks):
                self.colors[(family, key)] = FALLBACK_GREYS[i % len(FALLBACK_GREYS)]

    def name(self, family: str, key: str | None) -> str:
        if key is None:
            return DASH
        return self.data.names.get((family, key), key)

    def color(self, family: str, key: str) -> str:
        return self.colors.get((family, key), svg.FALLBACK_COLOR)

    def segments(self, family: str) -> list[Row]:
        return [r for r in self.data.segments if r["family"] == family]

    def is_fallback(self, family: str, key: str) -> bool:
        return any(r["key"] == key and r["is_fallback"] for r in self.segments(family))


# ----------------------------------------------------------------------------------------------- sections


FAMILY_HEADERS = (
    ("Segment family", False),
    ("Segments + fallbacks", True),
    ("Customers", True),
    ("In fallback segments", True),
    ("Definition version", False),
    ("Model and version", False),
)
HOW_TO_READ = """<div class="howto"><strong>How to read this page</strong>
<ul>
<li>Every customer is in exactly one segment of each <em>family</em> (RFM scores, behaviour, predictions, ...).
Shares are of all customers in that family.</li>
<li><em>Fallback</em> segments (grey) hold customers the models may not or cannot profile: no lawful basis or
an objection to profiling, or too little history. They are counted, never targeted.</li>
<li>Money is in the base currency of the warehouse; <em>value</em> is the average revenue per customer to date,
<em>expected value</em> the revenue the value model expects in the prediction horizon.</li>
<li>Moves compare the latest run with the run before it. Alerts and actions count everything emitted so far,
with the part the latest run added. Lift compares customers who got an action with a random holdout who did
not, with a 95% interval: an interval that crosses 0 is no proof of an effect.</li>
<li>All times are UTC. The page holds counts and averages only, no customer ids.</li>
</ul></div>"""


def _family_row(page: _Page, family: str) -> list[str]:
    segs = page.segments(family)
    total = sum(r["customers"] for r in segs)
    fallback = sum(r["customers"] for r in segs if r["is_fallback"])
    fallbacks = sum(1 for r in segs if r["is_fallback"])
    first = segs[0]
    return [
        escape(family_title(family)),
        f"{fmt_int(len(segs) - fallbacks)} + {fmt_int(fallbacks)}",
        fmt_int(total),
        f"{fmt_int(fallback)} ({fmt_pct(fallback / max(1, total))})",
        escape(first["definition_version"] or DASH),
        escape(f"{first['model_name'] or DASH} {first['model_version'] or ''}".strip()),
    ]


def _header(page: _Page) -> str:
    pub = page.data.publication
    families = _table(FAMILY_HEADERS, (_family_row(page, f) for f in page.data.families))
    toc = "".join(f'<li><a href="#{anchor}">{escape(title)}</a></li>' for anchor, title in SECTIONS)
    return (
        "<header><h1>Customer segments</h1>"
        f'<p class="meta">Publication <code>{escape(pub.version)}</code> &middot; run '
        f"<code>{escape(pub.run_id or DASH)}</code> &middot; published {escape(fmt_time(pub.published_at))} "
        f"&middot; <strong>{fmt_int(pub.customers)}</strong> customers</p>"
        f"{families}{HOW_TO_READ}<nav><strong>Contents</strong><ol>{toc}</ol></nav></header>"
    )


def _history_labels(instants: list[datetime]) -> tuple[list[str], str]:
    """One label per run: its date where every run is on a day of its own, else month-day and time."""
    days = [t.date() for t in instants]
    if len(set(days)) == len(days):
        return [d.isoformat() for d in days], "date, UTC"
    return [t.strftime("%m-%d %H:%M") for t in instants], "month-day hour:minute, UTC"


def _sizes_over_time(page: _Page, family: str) -> str:
    rows = [r for r in page.data.history or [] if r["family"] == family]
    instants = sorted({r["ts"] for r in rows})
    if len(instants) < 2:
        return _none("None yet: sizes over time appear from the second run on.")
    keys = [r["key"] for r in page.segments(family)]
    keys += sorted({r["key"] for r in rows} - set(keys))
    counts = {(r["key"], r["ts"]): r["customers"] for r in rows}
    series = []
    for key in keys:
        values = tuple(float(counts.get((key, t), 0)) for t in instants)
        if any(values):
            series.append(
                svg.Series(
                    label=page.name(family, key),
                    values=values,
                    color=page.color(family, key),
                    texts=tuple(fmt_int(v) for v in values),
                )
            )
    labels, unit = _history_labels(instants)
    chart = svg.line_chart(
        labels, series, title=f"{family_title(family)}: customers per segment at each run", width=600
    )
    return (
        f"<figure><figcaption>Customers per segment at each run ({len(instants)} runs; {escape(unit)})</figcaption>"
        f"{chart}</figure>"
    )


def _sizes(page: _Page) -> str:
    parts = [f'<section id="sizes"><h2>1. {escape(SECTIONS[0][1])}</h2>']
    parts.append(
        '<p class="note">Bars: customers in each segment now (share of the family). Lines: the same counts '
        "at each run, from the membership history.</p>"
    )
    for family in page.data.families:
        bars = [
            svg.Bar(
                label=r["name"],
                value=r["customers"],
                text=f"{fmt_int(r['customers'])} ({fmt_pct(r['share'])})",
                color=page.color(family, r["key"]),
            )
            for r in page.segments(family)
        ]
        now = svg.hbar_chart(bars, title=f"{family_title(family)}: customers per segment now", width=500)
        if page.data.history is None:
            over_time = _none("None yet: this publication has no membership history.")
        else:
            over_time = _sizes_over_time(page, family)
        parts.append(
            f'<h3 id="sizes-{escape(family)}">{escape(family_title(family))}</h3><div class="charts">'
            f"<figure><figcaption>Now</figcaption>{now}</figure>{over_time}</div>"
        )
    parts.append("</section>")
    return "".join(parts)


PROFILE_HEADERS = (
    ("Segment", False),
    ("Customers", True),
    ("Share", True),
    ("AOV", True),
    ("Orders", True),
    ("Value (avg revenue)", True),
    ("Churn risk", True),
    ("Tenure (days)", True),
    ("Recency (days)", True),
    ("CSAT", True),
    ("Expected value", True),
    ("Value growth", True),
)


def _profile_row(page: _Page, family: str, r: Row) -> list[str]:
    cells = [
        _swatch(page.color(family, r["segment_key"])) + escape(r["segment_name"] or r["segment_key"]),
        fmt_int(r["customers"]),
        fmt_pct(r["share"]),
        fmt_num(r["avg_aov_base"]),
        fmt_num(r["avg_frequency"], 1),
        fmt_num(r["avg_revenue_base"]),
        fmt_pct(r["churn_rate"]),
        fmt_int(r["avg_tenure_days"]),
        fmt_int(r["avg_recency_days"]),
        fmt_num(r["avg_csat"]),
        fmt_num(r["avg_expected_revenue_base"]),
        fmt_signed_pct(r["value_growth"]),
    ]
    return ["fallback", *cells] if page.is_fallback(family, r["segment_key"]) else cells


def _profiles(page: _Page) -> str:
    parts = [f'<section id="profiles"><h2>2. {escape(SECTIONS[1][1])}</h2>']
    parts.append(
        '<p class="note">Averages over the segment\'s customers. AOV: average order value; Orders: completed '
        "orders per customer; Value: revenue per customer to date; Churn risk: mean predicted probability of no "
        "order in the prediction horizon; Tenure: days since the first order; Recency: days since the last order; "
        "CSAT: average support satisfaction (1-5); Expected value: revenue expected per customer in the horizon; "
        "Value growth: expected revenue against the same customers' past revenue per horizon. "
        f"{DASH} : not measured for these customers.</p>"
    )
    if page.data.profiles is None:
        parts.append(_none("None yet: this publication has no segment profiles.") + "</section>")
        return "".join(parts)
    for family in page.data.families:
        rows = [r for r in page.data.profiles if r["family"] == family]
        parts.append(f"<h3>{escape(family_title(family))}</h3>")
        if not rows:
            parts.append(_none("None yet: no profile for this family."))
            continue
        order = {r["key"]: i for i, r in enumerate(page.segments(family))}
        rows.sort(key=lambda r: (order.get(r["segment_key"], len(order)), r["segment_key"]))
        parts.append(
            f'<p class="note">Run <code>{escape(short_run(rows[0]["dagster_run_id"]))}</code>, profiled '
            f"{escape(fmt_time(rows[0]['profiled_at']))}.</p>"
        )
        parts.append(_table(PROFILE_HEADERS, (_profile_row(page, family, r) for r in rows)))
    parts.append("</section>")
    return "".join(parts)


def _rule_items(page: _Page, family: str, rules: list[SegmentRule]) -> str:
    sizes = {r["key"]: r["customers"] for r in page.segments(family)}
    by_name = {r["name"]: r["key"] for r in page.segments(family)}
    items = []
    for rule in rules:
        key = rule.key or by_name.get(rule.name)
        size = f' <span class="tag">{fmt_int(sizes.get(key, 0))} customers</span>' if key else ""
        note = f' <span class="muted">{DASH} {escape(rule.note)}</span>' if rule.note else ""
        swatch = _swatch(page.color(family, key)) if key else ""
        items.append(f"<li>{swatch}<strong>{escape(rule.name)}</strong>{size}: {_all_of(rule.conditions)}{note}</li>")
    return f'<ol class="rules">{"".join(items)}</ol>'


def _leaf_items(page: _Page, family: str, seg: Row) -> list[str]:
    """The surrogate leaves a learnt segment owns, and how many of its customers the model placed under
    another segment's leaf."""
    mine = [r for r in page.data.leaves if r["family"] == family and r["key"] == seg["key"]]
    items = []
    for r in mine:
        conditions, _ = reason_words(r["rule"])
        share = f"{fmt_int(r['customers'])} of the {_plural(r['leaf_total'], 'customer')} it matches"
        items.append(f'<li>{_all_of(conditions)} <span class="tag">{escape(share)}</span></li>')
    if mine and mine[0]["rules"] > len(mine):
        more = mine[0]["rules"] - len(mine)
        rest = mine[0]["covered"] - sum(r["customers"] for r in mine)
        items.append(f'<li class="muted">{_plural(more, "more rule")} covering {_plural(rest, "customer")}</li>')
    outside = seg["customers"] - (mine[0]["covered"] if mine else 0)
    if mine and outside > 0:
        items.append(
            f'<li class="muted">{_plural(outside, "customer")} placed here by the model although the rules point '
            "to another segment</li>"
        )
    return items


def _reason_items(page: _Page, family: str, seg: Row) -> list[str]:
    """The most common reasons of a segment's customers, as recorded (a family without readable rules)."""
    mine = [r for r in page.data.reasons if r["family"] == family and r["key"] == seg["key"]]
    items = [
        f'<li>{_all_of(reason_words(r["reason"])[0])} <span class="tag">{fmt_int(r["customers"])}</span></li>'
        for r in mine
    ]
    if mine and mine[0]["reasons"] > len(mine):
        more = mine[0]["reasons"] - len(mine)
        rest = mine[0]["total"] - sum(r["customers"] for r in mine)
        items.append(f'<li class="muted">{_plural(more, "more reason")} covering {_plural(rest, "customer")}</li>')
    return items


def _learnt_rules(page: _Page, family: str) -> str:
    """Per segment its readable rules (surrogate leaves), else its most common reasons."""
    items = []
    for seg in page.segments(family):
        if seg["is_fallback"]:
            continue
        rules = _leaf_items(page, family, seg) or _reason_items(page, family, seg)
        body = f'<ul class="alternatives">{"".join(rules)}</ul>' if rules else _none("No rule recorded.")
        traits = page.data.traits.get((family, seg["key"]))
        traits_html = f'<div class="muted">Typical: {escape(traits)}</div>' if traits else ""
        items.append(
            f"<li>{_swatch(page.color(family, seg['key']))}<strong>{escape(seg['name'])}</strong> "
            f'<span class="tag">{fmt_int(seg["customers"])} customers</span>: any of{body}{traits_html}</li>'
        )
    return f'<ol class="rules">{"".join(items)}</ol>'


def _fallback_rules(page: _Page, family: str, listed: set[str]) -> str:
    """The fallback segments not already listed with the definition's rules, with their reasons."""
    items = []
    for seg in page.segments(family):
        if not seg["is_fallback"] or seg["key"] in listed:
            continue
        reasons = [r for r in page.data.reasons if r["family"] == family and r["key"] == seg["key"]]
        why = "; ".join(f"{r['reason']} ({fmt_int(r['customers'])})" for r in reasons) or "fallback"
        items.append(
            f"<li>{_swatch(page.color(family, seg['key']))}<strong>{escape(seg['name'])}</strong> "
            f'<span class="tag">{fmt_int(seg["customers"])} customers</span>: {escape(why)}</li>'
        )
    return f'<h4>Fallbacks</h4><ul class="rules">{"".join(items)}</ul>' if items else ""


def _family_rules(page: _Page, family: str) -> str:
    definition = page.data.definitions.get(family)
    content = (definition or {}).get("content") or {}
    head = ""
    if definition:
        head = (
            f'<p>{escape(str(definition.get("description") or "").strip())} <span class="muted">(definition '
            f"<code>{escape(str(definition.get('definition_name') or family))}</code> version "
            f"{escape(str(definition['version']))})</span></p>"
        )
    listed: set[str] = set()
    if content.get("rules"):
        scoring = content.get("scoring")
        rules = rfm_rules(content)
        listed = {r.key for r in rules if r.key}
        body = (
            "<p>The first rule that matches names the customer; scores run from 1 (lowest) to 5 (highest).</p>"
            + _rule_items(page, family, rules)
            + (f'<p class="note">How the scores are computed: {escape(str(scoring))}</p>' if scoring else "")
        )
    elif content.get("segments"):
        body = "<p>The first segment whose conditions all hold takes the customer.</p>" + _rule_items(
            page, family, predictive_rules(content, lambda key: page.name("rfm", key))
        )
    else:
        body = (
            "<p>The segments are learnt from the data (a clustering model places each customer). The readable rules "
            "below are a decision tree fitted to those segments: each rule is listed under the segment most of the "
            "customers it matches are in, with how many are.</p>" + _learnt_rules(page, family)
        )
    if not definition and not page.data.reasons:
        body = _none("None yet: this publication has neither definitions nor reasons for this family.")
    return f"<h3>{escape(family_title(family))}</h3>{head}{body}{_fallback_rules(page, family, listed)}"


def _rules(page: _Page) -> str:
    parts = [f'<section id="rules"><h2>3. {escape(SECTIONS[2][1])}</h2>']
    parts.extend(_family_rules(page, family) for family in page.data.families)
    parts.append("</section>")
    return "".join(parts)


def _heat(value: int, peak: int, diagonal: bool) -> str:
    """Background of a matrix cell: blue for staying, orange for moving, darker for more customers."""
    if not value or not peak:
        return ""
    strength = 0.12 + 0.78 * math.sqrt(value / peak)
    rgb = (78, 121, 167) if diagonal else (242, 142, 43)
    r, g, b = (round(255 - (255 - c) * strength) for c in rgb)
    text = "#fff" if strength > 0.65 else "#222"
    return f' style="background:#{r:02x}{g:02x}{b:02x};color:{text}"'


def _count(value: int) -> str:
    """A matrix cell: the count, or a quiet dot for none."""
    return fmt_int(value) if value else NONE


def _matrix(page: _Page, family: str, cells: list[Row]) -> str:
    order = [r["key"] for r in page.segments(family)]
    keys = {r["from_key"] for r in cells} | {r["to_key"] for r in cells}
    extra = sorted(keys - set(order))
    from_keys = [k for k in [*order, *extra] if any(r["from_key"] == k for r in cells)]
    to_keys = [k for k in [*order, *extra] if any(r["to_key"] == k for r in cells)]
    count = {(r["from_key"], r["to_key"]): int(r["customers"] or 0) for r in cells}
    peak_move = max((v for (f, t), v in count.items() if f != t), default=0)
    peak_stay = max((v for (f, t), v in count.items() if f == t), default=0)
    head = "".join(f'<th class="to">{escape(page.name(family, k))}</th>' for k in to_keys)
    rows = []
    for f in from_keys:
        tds = []
        for t in to_keys:
            v = count.get((f, t), 0)
            style = _heat(v, peak_stay if f == t else peak_move, f == t)
            tds.append(f'<td class="{"diag" if f == t else ""}"{style}>{_count(v)}</td>')
        total = sum(count.get((f, t), 0) for t in to_keys)
        rows.append(f"<tr><th>{escape(page.name(family, f))}</th>{''.join(tds)}<td>{fmt_int(total)}</td></tr>")
    return (
        f'<div class="wide"><table class="matrix"><thead><tr><th>from \\ to</th>{head}'
        f'<th class="to">total before</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _family_transitions(page: _Page, family: str) -> str:
    title = f"<h3>{escape(family_title(family))}</h3>"
    run = (page.data.transition_runs or {}).get(family)
    cells = [r for r in page.data.transitions or [] if r["family"] == family]
    if not run or not cells:
        return title + _none("None yet: moves appear from the second run on.")
    moved = int(run["moved"] or 0)
    caption = (
        f'<p class="note">Run <code>{escape(short_run(run["run_id"]))}</code> (scored '
        f"{escape(fmt_time(run['scored_at']))}) against run <code>{escape(short_run(run['previous_run_id']))}"
        f"</code>: <strong>{fmt_int(moved)}</strong> of {fmt_int(run['customers'])} customers changed segment "
        f"({fmt_pct(moved / max(1, run['customers'] or 0))}). Rows: segment before the run; columns: after; "
        "blue: stayed, orange: moved.</p>"
    )
    moves = [r for r in page.data.top_moves or [] if r["family"] == family]
    before = {}
    for r in cells:
        before[r["from_key"]] = before.get(r["from_key"], 0) + int(r["customers"] or 0)
    if moves:
        top = _table(
            [("From", False), ("To", False), ("Customers", True), ("Share of the segment before", True)],
            (
                [
                    escape(page.name(family, r["from_key"])),
                    escape(page.name(family, r["to_key"])),
                    fmt_int(r["customers"]),
                    fmt_pct(r["customers"] / max(1, before.get(r["from_key"], 0))),
                ]
                for r in moves
            ),
        )
        top = f"<h4>Largest moves</h4>{top}"
    else:
        top = "No customer changed segment in this run (for example a re-run on unchanged data)."
        if run["last_move_run_id"]:
            top += (
                f" The latest run with moves was {short_run(run['last_move_run_id'])}, scored "
                f"{fmt_time(run['last_move_scored_at'])}: {fmt_int(run['last_moved'])} customers moved."
            )
        top = _none(top)
    return title + caption + _matrix(page, family, cells) + top


def _transitions(page: _Page) -> str:
    parts = [f'<section id="transitions"><h2>4. {escape(SECTIONS[3][1])}</h2>']
    if page.data.transitions is None:
        parts.append(_none("None yet: this publication has no segment transitions."))
    else:
        parts.extend(_family_transitions(page, family) for family in page.data.families)
    parts.append("</section>")
    return "".join(parts)


def _alerts(page: _Page) -> str:
    alerts = page.data.alerts
    if alerts is None:
        return "<h3>Alerts</h3>" + _none("None yet: this project publishes no alerts.")
    if not alerts:
        return "<h3>Alerts</h3>" + _none("None yet: no customer crossed an alert's edge.")
    rows = [
        [
            escape(r["alert_name"]),
            escape(family_title(r["family"] or "")),
            escape(page.name(r["family"], r["from_key"])) + " &rarr; " + escape(page.name(r["family"], r["to_key"])),
            escape(r["owner"] or DASH),
            fmt_int(r["alerts"]),
            fmt_int(r["latest_run"]),
            fmt_num(r["revenue_base"]),
            escape(
                fmt_date(r["first_due"])
                + ("" if r["first_due"] == r["last_due"] else f" {DASH} {fmt_date(r['last_due'])}")
            ),
        ]
        for r in alerts
    ]
    headers = [
        ("Alert", False),
        ("Family", False),
        ("Move", False),
        ("Owner", False),
        ("Alerts", True),
        ("Of which this run", True),
        ("Revenue to date (base)", True),
        ("Due", False),
    ]
    return "<h3>Alerts</h3>" + _table(headers, rows)


def _outbox(page: _Page) -> str:
    actions = page.data.actions
    if actions is None:
        return "<h3>Outbox: playbook actions</h3>" + _none("None yet: this project publishes no playbook actions.")
    if not actions:
        return "<h3>Outbox: playbook actions</h3>" + _none("None yet: no playbook action was emitted.")
    rows = [
        [
            escape(r["action_name"]),
            escape(r["channel"] or DASH),
            escape(r["purpose"] or DASH),
            escape(r["lawful_basis"] or DASH),
            escape(r["trigger_kind"] or DASH),
            escape(r["owner"] or DASH),
            fmt_int(r["actions"]),
            fmt_int(r["treated"]),
            fmt_int(r["holdout"]),
            fmt_pct(r["holdout"] / max(1, r["actions"])),
            fmt_int(r["latest_run"]),
        ]
        for r in actions
    ]
    headers = [
        ("Action", False),
        ("Channel", False),
        ("Purpose", False),
        ("Lawful basis", False),
        ("Trigger", False),
        ("Owner", False),
        ("Actions", True),
        ("Treated (sent)", True),
        ("Holdout (not sent)", True),
        ("Holdout share", True),
        ("Of which this run", True),
    ]
    total = sum(r["actions"] for r in actions)
    return (
        "<h3>Outbox: playbook actions</h3>"
        f'<p class="note">{fmt_int(total)} actions in all. Holdout rows are never sent: they are the control group '
        "the lift is measured against.</p>" + _table(headers, rows)
    )


def _lift_status(r: Row) -> str:
    status = r["lift_status"] or ""
    if status == "measured":
        return "measured"
    if status == "no_closed_window":
        return f"no window closed yet; the next closes {fmt_date(r['next_window_end_date'])}"
    if status in ("too_few_holdout", "too_few_treated"):
        group = "holdout" if status == "too_few_holdout" else "treated"
        return f"too few {group} customers (< {fmt_int(r['min_group_customers'])}) to say"
    return status.replace("_", " ") or DASH


def _with_ci(v: Any, low: Any, high: Any, fmt, bound=None) -> str:
    """`+12.3 pts [+5.0, +19.6]`: the estimate with its unit, the interval's bounds by `bound` (default `fmt`)."""
    if _missing(v):
        return DASH
    bound = bound or fmt
    return f"{fmt(v)} [{bound(low)}, {bound(high)}]"


def _pts_bound(v: Any) -> str:
    return DASH if _missing(v) else f"{v * 100:+.1f}"


def _lift(page: _Page) -> str:
    lift = page.data.lift
    title = "<h3>Measured lift</h3>"
    if lift is None:
        return title + _none("None yet: this project publishes no lift measurement.")
    if not lift:
        return title + _none("None yet: no playbook action to measure.")
    window = next((r["lift_window_days"] for r in lift if r["lift_window_days"] is not None), None)
    rows = [
        [
            escape(r["action_name"]),
            f'<span class="status">{escape(_lift_status(r))}</span>',
            fmt_int(r["treated_customers"]),
            fmt_int(r["holdout_customers"]),
            _with_ci(
                r["purchase_rate_lift"],
                r["purchase_rate_lift_ci_low"],
                r["purchase_rate_lift_ci_high"],
                fmt_pts,
                _pts_bound,
            ),
            _with_ci(
                r["revenue_per_customer_lift_base"],
                r["revenue_per_customer_lift_ci_low_base"],
                r["revenue_per_customer_lift_ci_high_base"],
                lambda v: DASH if _missing(v) else f"{v:+,.2f}",
            ),
            _with_ci(
                r["retention_rate_lift"], r["retention_rate_lift_ci_low"], r["retention_rate_lift_ci_high"], fmt_pts
            ),
            fmt_int(r["open_windows"]),
        ]
        for r in lift
    ]
    headers = [
        ("Action", False),
        ("Status", False),
        ("Treated", True),
        ("Holdout", True),
        ("Purchase rate lift [95% CI]", True),
        ("Revenue per customer lift [95% CI]", True),
        ("Retention lift [95% CI]", True),
        ("Open", True),
    ]
    intro = (
        f'<p class="note">Treated minus holdout over the {fmt_int(window)} days after each action, counting only '
        "windows the data has closed. Purchase rate: share who ordered; retention: the same among earlier buyers "
        "(pts: percentage points).</p>"
    )
    intervals = [
        svg.Interval(
            label=r["action_name"],
            estimate=None if _missing(r["purchase_rate_lift"]) else r["purchase_rate_lift"] * 100,
            low=None if _missing(r["purchase_rate_lift_ci_low"]) else r["purchase_rate_lift_ci_low"] * 100,
            high=None if _missing(r["purchase_rate_lift_ci_high"]) else r["purchase_rate_lift_ci_high"] * 100,
            text=(
                _with_ci(
                    r["purchase_rate_lift"],
                    r["purchase_rate_lift_ci_low"],
                    r["purchase_rate_lift_ci_high"],
                    fmt_pts,
                    _pts_bound,
                )
                if not _missing(r["purchase_rate_lift"])
                else _lift_status(r)
            ),
            color=svg.PALETTE[0] if r["lift_status"] == "measured" else svg.FALLBACK_COLOR,
        )
        for r in lift
    ]
    chart = ""
    if any(i.estimate is not None for i in intervals):
        chart = (
            "<figure><figcaption>Purchase rate lift, percentage points, 95% interval (grey: too few customers to "
            "say)</figcaption>"
            + svg.interval_chart(intervals, title="Purchase rate lift per action", x_format=lambda v: f"{v:+.0f}")
            + "</figure>"
        )
    return title + intro + _table(headers, rows) + chart


def _playbooks(page: _Page) -> str:
    return (
        f'<section id="playbooks"><h2>5. {escape(SECTIONS[4][1])}</h2>'
        + _alerts(page)
        + _outbox(page)
        + _lift(page)
        + "</section>"
    )


def _predictive(page: _Page) -> str:
    parts = [f'<section id="predictive"><h2>6. {escape(SECTIONS[5][1])}</h2>']
    p = page.data.predictions
    if p is None:
        parts.append(_none("None yet: this project publishes no predictions.") + "</section>")
        return "".join(parts)
    s = p.summary
    if not s["predicted"]:
        parts.append(_none("None yet: no customer has a prediction.") + "</section>")
        return "".join(parts)
    parts.append(
        f"<p>Predictions as of <strong>{escape(fmt_date(s['as_of_date']))}</strong> for the next "
        f"<strong>{fmt_int(s['horizon_days'])} days</strong>: {fmt_int(s['predicted'])} of "
        f"{fmt_int(s['customers'])} customers predicted (churn model version {escape(str(s['churn_model_version']))}, "
        f"value model version {escape(str(s['value_model_version']))}). Expected revenue in the horizon: "
        f"{fmt_num(s['total_expected_revenue_base'])} in all, {fmt_num(s['avg_expected_revenue_base'])} per "
        f"predicted customer; mean churn probability {fmt_pct(s['avg_churn'])}.</p>"
    )
    high, medium = p.high_churn, p.medium_churn
    tier_words = {
        "high": f"High risk (at least {fmt_pct(high, 0)})",
        "medium": f"Medium risk ({fmt_pct(medium, 0)} to {fmt_pct(high, 0)})",
        "low": f"Low risk (under {fmt_pct(medium, 0)})",
    }

    def risk_of(bin_: int) -> str:
        lower = bin_ / 10
        return "high" if lower >= high - 1e-9 else "medium" if lower >= medium - 1e-9 else "low"

    bars = [
        svg.Bar(
            label=f"{b['bin'] * 10}{DASH}{b['bin'] * 10 + 10}%",
            value=b["customers"],
            text=fmt_int(b["customers"]),
            color=RISK_COLORS[risk_of(b["bin"])],
        )
        for b in p.churn_histogram
    ]
    parts.append(
        '<div class="charts"><figure><figcaption>Customers by churn probability</figcaption>'
        + svg.column_chart(
            bars, title="Customers by churn probability", x_title="probability of no order in the horizon"
        )
        + "</figure></div>"
    )
    predicted = max(1, s["predicted"])
    parts.append(
        "<h3>Churn-risk tiers</h3>"
        + _table(
            [
                ("Tier", False),
                ("Customers", True),
                ("Share", True),
                ("Mean churn probability", True),
                ("Expected value per customer", True),
                ("Expected revenue in all", True),
            ],
            (
                [
                    _swatch(RISK_COLORS.get(r["risk"], svg.FALLBACK_COLOR))
                    + escape(tier_words.get(r["risk"], r["risk"])),
                    fmt_int(r["customers"]),
                    fmt_pct(r["customers"] / predicted),
                    fmt_pct(r["avg_churn"]),
                    fmt_num(r["avg_expected_revenue_base"]),
                    fmt_num(r["total_expected_revenue_base"]),
                ]
                for r in _all_tiers(p.risk_tiers)
            ),
        )
    )
    total_expected = s["total_expected_revenue_base"] or 0
    value_names = {1: "Top 20%", 2: "20-40%", 3: "40-60%", 4: "60-80%", 5: "Bottom 20%"}
    parts.append(
        "<h3>Value tiers (by expected revenue in the horizon)</h3>"
        + _table(
            [
                ("Tier", False),
                ("Customers", True),
                ("Expected revenue range", True),
                ("Mean", True),
                ("In all", True),
                ("Share of expected revenue", True),
                ("Mean churn probability", True),
            ],
            (
                [
                    escape(value_names.get(r["value_tier"], str(r["value_tier"]))),
                    fmt_int(r["customers"]),
                    f"{fmt_num(r['min_expected'])} {DASH} {fmt_num(r['max_expected'])}",
                    fmt_num(r["avg_expected"]),
                    fmt_num(r["total_expected"]),
                    fmt_pct((r["total_expected"] or 0) / total_expected) if total_expected else DASH,
                    fmt_pct(r["avg_churn"]),
                ]
                for r in p.value_tiers
            ),
        )
    )
    parts.append(_risk_by_value(p.risk_by_value, tier_words, value_names))
    if p.not_predicted:
        parts.append(
            "<h3>Not predicted</h3>"
            + _table(
                [("Reason", False), ("Customers", True)],
                ([escape(r["reason"].replace("_", " ")), fmt_int(r["customers"])] for r in p.not_predicted),
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _all_tiers(rows: list[Row]) -> list[Row]:
    """High, medium and low risk in that order, a tier without customers included."""
    found = {r["risk"]: r for r in rows}
    empty = {"customers": 0, "avg_churn": None, "avg_expected_revenue_base": None, "total_expected_revenue_base": None}
    return [found.get(risk, {"risk": risk, **empty}) for risk in ("high", "medium", "low")]


def _risk_by_value(cells: list[Row], tier_words: dict[str, str], value_names: dict[int, str]) -> str:
    if not cells:
        return ""
    count = {(r["risk"], r["value_tier"]): int(r["customers"]) for r in cells}
    peak = max(count.values(), default=0)
    tiers = sorted({r["value_tier"] for r in cells})
    head = "".join(f"<th class=n>{escape(value_names.get(t, str(t)))}</th>" for t in tiers)
    rows = []
    for risk in ("high", "medium", "low"):
        tds = "".join(
            f"<td{_heat(count.get((risk, t), 0), peak, False)}>{_count(count.get((risk, t), 0))}</td>" for t in tiers
        )
        rows.append(f"<tr><th>{escape(tier_words[risk])}</th>{tds}</tr>")
    return (
        "<h3>Churn risk by value tier (customers)</h3>"
        '<p class="note">Top-left: valuable customers likely to stop buying, the first to call.</p>'
        f'<div class="wide"><table class="matrix"><thead><tr><th>risk \\ value</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _footer(page: _Page) -> str:
    return (
        f"<footer>Built from the published serving version <code>{escape(page.data.publication.version)}</code> "
        "(<code>bi.duckdb</code>, opened read-only). Aggregates only: no customer ids, names or contact details. "
        "The same publication always gives the same page.</footer>"
    )


def render_page(data: ReportData) -> str:
    """The whole page as one string."""
    page = _Page(data)
    body = "".join(
        [
            _header(page),
            _sizes(page),
            _profiles(page),
            _rules(page),
            _transitions(page),
            _playbooks(page),
            _predictive(page),
            _footer(page),
        ]
    )
    title = f"Customer segments {DASH} {data.publication.version}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title><style>{STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>\n"
    )
