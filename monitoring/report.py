"""The dashboard's presentation: headline figures, the charts, and the CSV export of a :class:`Dashboard`."""

from __future__ import annotations

import csv
import io

from monitoring.bi import Dashboard
from monitoring.charts import bar_chart, line_chart

# (key, label, kind) of the headline figures; kind: count | percent | rating | seconds
HEADLINES = (
    ("conversations", "Conversations", "count"),
    ("containment", "Containment", "percent"),
    ("handoff_rate", "Handoff rate", "percent"),
    ("fallback_rate", "Fallback rate", "percent"),
    ("csat", "CSAT (1–5)", "rating"),
    ("faq_helpful", "FAQ answers helpful", "percent"),
    ("rec_impressions", "Recommendations shown", "count"),
    ("rec_ctr", "Recommendation click-through", "percent"),
    ("rec_conversion", "Recommendation conversion", "percent"),
    ("negative_share", "Negative messages", "percent"),
    ("median_wait_to_claim_s", "Median wait for an agent", "seconds"),
    ("alerts", "Alerts", "count"),
)


def _format(value: float | int | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "percent":
        return f"{100 * value:.1f} %"
    if kind == "rating":
        return f"{value:.2f}"
    if kind == "seconds":
        return f"{value / 60:.1f} min" if value >= 60 else f"{value:.0f} s"
    return f"{value:,.0f}"


def headlines(d: Dashboard) -> list[tuple[str, str, str]]:
    """(key, label, formatted value) of each headline figure."""
    return [(key, label, _format(d.totals.get(key), kind)) for key, label, kind in HEADLINES]


def charts(d: Dashboard) -> list[tuple[str, str]]:
    """(id, SVG) of every chart, in display order."""
    days, v = d.days, d.daily
    return [
        ("containment", line_chart("Containment and handoff rate", days,
                                   {"containment": v["containment"], "handoff rate": v["handoff_rate"]},
                                   percent=True)),
        ("volume", line_chart("Conversations and handoffs per day", days,
                              {"conversations": v["conversations"], "handoffs": v["handoffs"]})),
        ("handoff-reasons", bar_chart("Handoff reasons", [(k, float(n)) for k, n in d.handoff_reasons])),
        ("fallback", line_chart("Fallback rate", days, {"fallback": v["fallback_rate"]}, percent=True)),
        ("sentiment", line_chart("Sentiment trend: share of negative messages", days,
                                 {"negative": v["negative_share"]}, percent=True)),
        ("csat", line_chart("CSAT after a handoff (mean, 1–5)", days, {"CSAT": v["csat"]})),
        ("faq", line_chart("FAQ answers rated helpful", days, {"helpful": v["faq_helpful"]}, percent=True)),
        ("rec-impressions", line_chart("Recommendation impressions", days, {"impressions": v["rec_impressions"]})),
        ("rec-rates", line_chart("Recommendation click-through and conversion", days,
                                 {"click-through": v["rec_ctr"], "conversion": v["rec_conversion"]},
                                 percent=True)),
        ("intents", bar_chart("Intent mix (user messages)", [(k, float(n)) for k, n in d.intent_mix])),
        ("alerts", line_chart("Alerts opened per day", days, {"alerts": [float(a or 0) for a in v["alerts"]]})),
    ]  # fmt: skip


def to_csv(d: Dashboard) -> str:
    """One row per day with every daily metric."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["day", *d.daily])
    writer.writeheader()
    writer.writerows(d.rows())
    return out.getvalue()
