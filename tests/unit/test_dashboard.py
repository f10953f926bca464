"""Business metrics from a small known database, the charts, and the console's dashboard and report."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import get_engine
from core.models import AlertIncident, BehaviourEvent, CsatRating, FaqFeedback, Handoff, RecImpression, Turn
from monitoring import bi, report
from monitoring.charts import bar_chart, line_chart
from tests.unit.test_channels_web import _staff
from tests.unit.test_channels_web import gateway as gateway  # the fixture

DAY1, DAY2 = date(2026, 11, 19), date(2026, 11, 20)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def seed(engine: Engine) -> None:
    """Two days of traffic (and one turn long before) whose metrics are worked out by hand in the tests."""
    turns = [
        ("a", DAY1, "greet", "positive"), ("a", DAY1, "payment_issue", "negative"),
        ("b", DAY1, "nlu_fallback", "neutral"),
        ("c", DAY2, "track_order", "negative"), ("d", DAY2, "greet", None),
        ("old", DAY1 - timedelta(days=9), "greet", "negative"),
    ]  # fmt: skip
    with Session(engine) as s:
        for i, (sender, day, intent, sentiment) in enumerate(turns):
            s.add(Turn(tracker_event_id=i + 1, sender_id=sender, text="x", intent=intent, sentiment=sentiment,
                       timestamp=at(day, 10, i)))  # fmt: skip
        s.add(Handoff(conversation_id="a", reason="explicit_request", state="resolved", created_at=at(DAY1, 11),
                      claimed_at=at(DAY1, 11) + timedelta(seconds=90)))  # fmt: skip
        s.add(Handoff(conversation_id="c", reason="negative_sentiment", state="queued", created_at=at(DAY2, 11)))
        s.add(CsatRating(conversation_id="a", rating=4, created_at=at(DAY1, 12)))
        s.add(CsatRating(conversation_id="c", rating=5, created_at=at(DAY2, 12)))
        for day, helpful in [(DAY1, True), (DAY1, False), (DAY2, True)]:
            s.add(FaqFeedback(sender_id="b", entry_id="returns", helpful=helpful, created_at=at(day, 13)))
        for customer, product in [("cust1", "p1"), ("cust1", "p2"), ("cust2", "p1")]:
            s.add(RecImpression(request_id=f"r-{customer}", customer_id=customer, product_id=product, position=0,
                                source="sequence", reason="because", shown_at=at(DAY2, 14)))  # fmt: skip
        s.add(BehaviourEvent(customer_id="cust1", product_id="p2", kind="rec_click", ts=at(DAY2, 14, 5), source="chat"))
        s.add(BehaviourEvent(customer_id="cust1", product_id="p2", kind="purchase", ts=at(DAY2 + timedelta(days=1), 9)))
        s.add(
            BehaviourEvent(customer_id="cust2", product_id="p1", kind="purchase", ts=at(DAY2, 9))
        )  # before it was shown
        s.add(AlertIncident(engine_id=1, state="resolved", opened_at=at(DAY2, 15), topics='["intent:payments"]'))
        s.commit()


def check_metrics(engine: Engine) -> None:
    """What :func:`seed` must give (shared with the PostgreSQL test)."""
    d = bi.build(engine, DAY1, DAY2)
    assert d.days == ["2026-11-19", "2026-11-20"]
    t = d.totals
    assert (t["conversations"], t["user_turns"], t["handoffs"]) == (4, 5, 2)
    assert t["handoff_rate"] == 0.5 and t["containment"] == 0.5
    assert t["fallback_rate"] == 0.2 and t["negative_share"] == 0.5  # 2 of the 4 scored turns
    assert t["csat"] == 4.5 and t["csat_ratings"] == 2 and t["faq_helpful"] == round(2 / 3, 4)
    assert t["median_wait_to_claim_s"] == 90
    assert t["rec_impressions"] == 3 and t["rec_ctr"] == round(1 / 3, 4) and t["rec_conversion"] == round(1 / 3, 4)
    assert t["alerts"] == 1 and d.alerts[0]["topics"] == "intent:payments"
    assert d.daily["conversations"] == [2, 2] and d.daily["fallback_rate"] == [round(1 / 3, 4), 0.0]
    assert d.daily["negative_share"] == [round(1 / 3, 4), 1.0] and d.daily["csat"] == [4.0, 5.0]
    assert d.daily["rec_impressions"] == [0, 3] and d.daily["rec_ctr"] == [None, round(1 / 3, 4)]
    assert d.daily["containment"] == [0.5, 0.5]
    assert dict(d.handoff_reasons) == {"explicit_request": 1, "negative_sentiment": 1}
    assert dict(d.csat_distribution) == {"4": 1, "5": 1}
    assert dict(d.intent_mix) == {"greet": 2, "nlu_fallback": 1, "payment_issue": 1, "track_order": 1}


def test_metrics_of_a_known_database(app_settings) -> None:  # type: ignore[no-untyped-def]
    engine = get_engine()
    seed(engine)
    check_metrics(engine)
    empty = bi.build(engine, date(2025, 1, 1), date(2025, 1, 3))  # nothing then: no rates, no crash
    assert empty.totals["containment"] is None and empty.daily["csat"] == [None] * 3
    assert "no data in this period" in report.charts(empty)[0][1]


@pytest.mark.parametrize("days", [0, -3, bi.MAX_DAYS + 1])
def test_bad_windows_are_refused(days: int) -> None:
    with pytest.raises(bi.BadWindow, match="days must be between"):
        bi.window(days)


def test_charts_escape_labels_and_leave_gaps() -> None:
    svg = bar_chart("Intent mix", [("<script>alert(1)</script>", 3.0)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    line = line_chart("Rate", ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"],
                      {"r": [0.1, None, 0.3, 0.4]}, percent=True)  # fmt: skip
    assert line.count("<polyline") == 1 and line.count("<circle") == 3  # the gap splits the line


def test_the_console_dashboard_and_report(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _, service = gateway
    seed(service.engine)
    assert client.get("/console/dashboard", follow_redirects=False).headers["location"] == "/console/login"
    assert client.get("/console/api/dashboard").status_code == 401
    ann, _ = _staff(client.app, "ann")  # any staff role may look
    page = ann.get("/console/dashboard", params={"days": 3650})
    assert page.status_code == 422 and "less than or equal to 366" in page.text
    page = ann.get("/console/dashboard", params={"days": 30})
    assert page.status_code == 200 and page.text.count("<svg") == len(
        report.charts(bi.build(service.engine, DAY1, DAY2))
    )
    assert re.search(r'data-key="containment"><span class="value">[^<]+</span>', page.text)
    r = ann.get("/console/dashboard/report.html", params={"days": 7})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert "<style>" in r.text and "<svg" in r.text and "Generated" in r.text
    r = ann.get("/console/dashboard/report.csv", params={"days": 7})
    lines = r.text.strip().splitlines()
    assert r.headers["content-type"].startswith("text/csv") and lines[0].startswith("day,user_turns,conversations")
    assert len(lines) == 8
    data = ann.get("/console/api/dashboard", params={"days": 1}).json()
    assert set(data["totals"]) >= {"containment", "csat", "rec_ctr"} and len(data["days"]) == 1
