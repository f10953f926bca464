"""The staff console: sign in, the handoff queue, a conversation with its NLU signals, and actions.

Server-rendered pages (Jinja2, autoescaped) with plain HTML forms, so everything works without
JavaScript; a small script refreshes the queue and appends new messages. Every form carries the
session's CSRF token; the session cookie is HttpOnly and SameSite=Strict.
"""

# No `from __future__ import annotations`: FastAPI resolves these routes' local Annotated aliases at runtime.
import functools
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Cookie, Depends, Form, Header, Query, Request
from fastapi import Path as InPath
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, col, select

from bot.channels import auth
from bot.channels.auth import Staff
from bot.channels.conversations import ChatService, message_public
from bot.channels.errors import BadMessage, Forbidden, NotAuthenticated
from bot.channels.web import MAX_ID, AfterParam, Typing
from core.handoff import CLOSED_STATES, HandoffNotFound, active_handoff, history
from core.models import ACTIVE_HANDOFF_STATES, AlertIncident, AlertSilence, Conversation, Handoff, utcnow
from monitoring import bi, report
from monitoring.sinks import acknowledge

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "staff_session"
LOGIN_CSRF = "login_csrf"
ACTIONS = {"claim", "release", "resolve", "hand-back"}
RISK_ROLES = {"risk", "admin"}  # acknowledge and silence alerts
SILENCE_DIMENSIONS = ("all", "intent", "channel", "product")
MAX_SILENCE_HOURS = 168.0
DaysParam = Annotated[int, Query(ge=1, le=bi.MAX_DAYS, description="the last N days (UTC), today included")]
IdParam = Annotated[int, InPath(ge=1, le=MAX_ID)]


class LoginRequired(Exception):
    """A page (not an API call) was opened without a session: redirect to the login form."""


def router(
    service: ChatService, typing: Typing, *, session_hours: float, secure_cookies: bool,
    lockout: auth.Lockout = auth.DEFAULT_LOCKOUT,
) -> APIRouter:  # fmt: skip
    """The console's routes (``lockout``: the per-account sign-in back-off)."""
    api = APIRouter(prefix="/console")
    engine = service.engine

    def staff(staff_session: Annotated[str | None, Cookie()] = None) -> Staff:
        return auth.session_staff(engine, staff_session)

    def page_staff(staff_session: Annotated[str | None, Cookie()] = None) -> Staff:
        try:
            return auth.session_staff(engine, staff_session)
        except NotAuthenticated as exc:
            raise LoginRequired() from exc

    StaffDep = Annotated[Staff, Depends(staff)]
    PageStaff = Annotated[Staff, Depends(page_staff)]

    def actor(person: Staff, csrf: str | None) -> Staff:
        auth.check_csrf(person, csrf)
        if not person.can_act:
            raise Forbidden(f"the {person.role} role can read conversations but not act in them")
        return person

    @api.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, error: str = "") -> Response:
        token = secrets.token_urlsafe(24)
        page = TEMPLATES.TemplateResponse(request, "login.html", {"csrf": token, "error": error[:200]})
        page.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=secure_cookies, path="/console")
        return page

    @api.post("/login")
    def login(
        username: Annotated[str, Form(max_length=100)], password: Annotated[str, Form(max_length=200)],
        csrf_token: Annotated[str, Form(max_length=100)], login_csrf: Annotated[str | None, Cookie()] = None,
    ) -> Response:  # fmt: skip
        if not login_csrf or not secrets.compare_digest(login_csrf.encode(), csrf_token.encode()):
            return _to("/console/login?error=" + quote("The form expired; please try again."))
        try:
            token, _ = auth.login(engine, username, password, hours=session_hours, lockout=lockout)
        except NotAuthenticated as exc:
            return _to("/console/login?error=" + quote(str(exc)))
        out = _to("/console")
        out.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies, path="/console",
                       max_age=int(session_hours * 3600))  # fmt: skip
        out.delete_cookie(LOGIN_CSRF, path="/console")
        return out

    @api.post("/logout")
    def logout(
        person: StaffDep, csrf_token: Annotated[str, Form()], staff_session: Annotated[str | None, Cookie()] = None
    ) -> Response:
        auth.check_csrf(person, csrf_token)
        auth.logout(engine, staff_session)
        out = _to("/console/login")
        out.delete_cookie(COOKIE, path="/console")
        return out

    @api.get("", response_class=HTMLResponse)
    def queue_page(request: Request, person: PageStaff) -> Response:
        return TEMPLATES.TemplateResponse(request, "queue.html", {"staff": person, **queue_data(person)})

    @api.get("/api/queue")
    def queue_json(person: StaffDep) -> dict[str, Any]:
        return queue_data(person)

    def queue_data(person: Staff) -> dict[str, Any]:
        with Session(engine) as s:
            active = list(s.exec(select(Handoff).where(col(Handoff.state).in_(ACTIVE_HANDOFF_STATES))
                                 .order_by(col(Handoff.id))))  # fmt: skip
            closed = list(s.exec(select(Handoff).where(col(Handoff.state).in_(CLOSED_STATES))
                                 .order_by(col(Handoff.id).desc()).limit(20)))  # fmt: skip
        return {
            "active": [_row(service, h, person) for h in active],
            "closed": [_row(service, h, person) for h in closed],
        }

    @api.get("/conversations/{conversation_id}", response_class=HTMLResponse)
    def conversation_page(request: Request, conversation_id: str, person: PageStaff, error: str = "") -> Response:
        data = conversation_data(conversation_id, person)
        return TEMPLATES.TemplateResponse(request, "conversation.html", {"staff": person, "error": error[:300], **data})

    @api.get("/api/conversations/{conversation_id}")
    def conversation_json(conversation_id: str, person: StaffDep, after: AfterParam = 0) -> dict[str, Any]:
        data = conversation_data(conversation_id, person, after=after)
        data["conversation"] = {k: data["conversation"][k] for k in ("id", "channel", "customer_id")}
        return data

    def conversation_data(conversation_id: str, person: Staff, after: int = 0) -> dict[str, Any]:
        with Session(engine) as s:
            conv = s.get(Conversation, conversation_id)
            handoff = s.exec(select(Handoff).where(Handoff.conversation_id == conversation_id)
                             .order_by(col(Handoff.id).desc())).first()  # fmt: skip
            transitions = history(s, handoff.id) if handoff and handoff.id else []
        if conv is None and handoff is None:
            raise HandoffNotFound(f"no conversation {conversation_id}")
        return {
            "conversation": {"id": conversation_id, "channel": conv.channel if conv else "rest",
                             "customer_id": conv.customer_id if conv else None},
            "handoff": _row(service, handoff, person) if handoff else None,
            "transitions": [{"from": t.from_state, "to": t.to_state, "actor": t.actor, "at": t.at.isoformat(),
                             "note": t.note} for t in transitions],
            "messages": [message_public(m, staff=True) for m in service.messages(conversation_id, after=after)],
        }  # fmt: skip

    @api.post("/handoffs/{handoff_id}/reply")
    def reply(
        handoff_id: IdParam, person: StaffDep, text: Annotated[str, Form(max_length=2000)],
        csrf_token: Annotated[str, Form()],
    ) -> Response:  # fmt: skip
        me = actor(person, csrf_token)
        message = service.agent_says(handoff_id, me.username, text, override=me.is_admin)
        typing.clear(message.conversation_id)
        return _to(f"/console/conversations/{quote(message.conversation_id, safe='')}#m{message.id}")

    @api.post("/handoffs/{handoff_id}/{action}")
    def act(
        handoff_id: IdParam, action: str, person: StaffDep, csrf_token: Annotated[str | None, Form()] = None,
        x_csrf_token: Annotated[str | None, Header()] = None,
    ) -> Response:  # fmt: skip
        me = actor(person, csrf_token or x_csrf_token)
        if action not in ACTIONS:
            raise Forbidden(f"unknown action {action}; one of {', '.join(sorted(ACTIONS))}")
        if action == "claim":
            change = service.claim(handoff_id, me.username)
        elif action == "release":
            change = service.release(handoff_id, me.username, override=me.is_admin)
        elif action == "resolve":
            change = service.resolve(handoff_id, me.username, override=me.is_admin)
        else:
            change = service.hand_back(handoff_id, me.username, override=me.is_admin)
        return _to(f"/console/conversations/{quote(change.handoff.conversation_id, safe='')}")

    @api.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, person: PageStaff, error: str = "") -> Response:
        with Session(engine) as s:
            rows = list(s.exec(select(AlertIncident).order_by(col(AlertIncident.id).desc()).limit(50)))
            silenced = list(s.exec(select(AlertSilence).order_by(col(AlertSilence.ends_at).desc()).limit(20)))
        now = utcnow()
        silences = [{"id": x.id, "topic": x.dimension if x.value == "*" else f"{x.dimension}:{x.value}",
                     "until": x.ends_at.isoformat(timespec="minutes"), "by": x.created_by, "comment": x.comment,
                     "active": x.ends_at > now} for x in silenced]  # fmt: skip
        incidents = [{"id": i.id, "state": i.state, "opened_at": i.opened_at.isoformat(timespec="minutes"),
                      "resolved_at": i.resolved_at.isoformat(timespec="minutes") if i.resolved_at else "",
                      "evidence": json.loads(i.evidence or "{}"), "acked_by": i.acked_by, "ack_via": i.ack_via}
                     for i in rows]  # fmt: skip
        return TEMPLATES.TemplateResponse(request, "alerts.html", {
            "staff": person, "incidents": incidents, "silences": silences, "error": error[:300],
            "dimensions": SILENCE_DIMENSIONS, "can_silence": person.role in RISK_ROLES,
        })  # fmt: skip

    def risk_team(person: Staff, csrf: str, doing: str) -> Staff:
        auth.check_csrf(person, csrf)
        if person.role not in RISK_ROLES:
            raise Forbidden(f"only the risk team (or an admin) {doing}")
        return person

    @api.post("/silences")
    def add_silence(
        person: StaffDep, csrf_token: Annotated[str, Form()], dimension: Annotated[str, Form(max_length=16)],
        hours: Annotated[float, Form()], value: Annotated[str, Form(max_length=100)] = "*",
        comment: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:  # fmt: skip
        me = risk_team(person, csrf_token, "silences alerts")
        if dimension not in SILENCE_DIMENSIONS:
            raise BadMessage(f"dimension must be one of {', '.join(SILENCE_DIMENSIONS)}")
        if not 0 < hours <= MAX_SILENCE_HOURS:
            raise BadMessage(f"a silence lasts more than 0 and at most {MAX_SILENCE_HOURS} hours")
        value = "*" if dimension == "all" else (value.strip() or "*")
        with Session(engine) as s:
            s.add(AlertSilence(dimension=dimension, value=value, ends_at=utcnow() + timedelta(hours=hours),
                               created_by=me.username, comment=comment.strip()))  # fmt: skip
            s.commit()
        return _to("/console/alerts")

    @api.post("/silences/{silence_id}/end")
    def end_silence(silence_id: IdParam, person: StaffDep, csrf_token: Annotated[str, Form()]) -> Response:
        risk_team(person, csrf_token, "silences alerts")
        with Session(engine) as s:
            silence = s.get(AlertSilence, silence_id)
            if silence is None:
                raise HandoffNotFound(f"no silence #{silence_id}")
            silence.ends_at = min(silence.ends_at, utcnow())
            s.add(silence)
            s.commit()
        return _to("/console/alerts")

    @api.post("/alerts/{incident_id}/ack")
    def ack_alert(incident_id: IdParam, person: StaffDep, csrf_token: Annotated[str, Form()]) -> Response:
        risk_team(person, csrf_token, "acknowledges alerts")
        if acknowledge(engine, incident_id, person.username, "console") is None:
            raise HandoffNotFound(f"no incident #{incident_id}")
        return _to("/console/alerts")

    def dashboard(days: int) -> bi.Dashboard:
        return bi.build(engine, *bi.window(days))

    def dashboard_view(days: int) -> dict[str, Any]:
        d = dashboard(days)
        return {"dashboard": d, "days": days, "headlines": report.headlines(d), "charts": report.charts(d)}

    @api.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page(request: Request, person: PageStaff, days: DaysParam = 30) -> Response:
        return TEMPLATES.TemplateResponse(request, "dashboard.html", {"staff": person, **dashboard_view(days)})

    @api.get("/dashboard/report.html", response_class=HTMLResponse)
    def dashboard_report(request: Request, person: PageStaff, days: DaysParam = 30) -> Response:
        view = dashboard_view(days)
        page = TEMPLATES.TemplateResponse(request, "report.html", {
            "staff": person, **view, "css": _report_css(), "conversion_days": bi.CONVERSION_DAYS,
            "generated": datetime.now(UTC).isoformat(timespec="minutes"),
        })  # fmt: skip
        page.headers["Content-Disposition"] = (
            f'attachment; filename="storebot-report-{view["dashboard"].start}-{view["dashboard"].end}.html"'
        )
        return page

    @api.get("/dashboard/report.csv")
    def dashboard_csv(person: PageStaff, days: DaysParam = 30) -> Response:
        d = dashboard(days)
        return Response(
            report.to_csv(d),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="storebot-daily-{d.start}-{d.end}.csv"'},
        )

    @api.get("/api/dashboard")
    def dashboard_json(person: StaffDep, days: DaysParam = 30) -> dict[str, Any]:
        d = dashboard(days)
        return {"start": d.start.isoformat(), "end": d.end.isoformat(), "days": d.days, "totals": d.totals,
                "daily": d.daily, "handoff_reasons": d.handoff_reasons, "handoff_outcomes": d.handoff_outcomes,
                "csat_distribution": d.csat_distribution, "intent_mix": d.intent_mix, "alerts": d.alerts}  # fmt: skip

    @api.post("/conversations/{conversation_id}/typing", status_code=204)
    def agent_typing(
        conversation_id: str, person: StaffDep, x_csrf_token: Annotated[str | None, Header()] = None
    ) -> None:
        actor(person, x_csrf_token)
        with Session(service.engine) as s:
            handoff = active_handoff(s, conversation_id)
        # only the person answering (or an admin) shows "typing..." to the customer
        if handoff is None or handoff.state != "claimed" or (handoff.agent != person.username and not person.is_admin):
            raise Forbidden("only the agent who claimed this conversation shows as typing")
        typing.mark(conversation_id)

    return api


def _row(service: ChatService, h: Handoff, person: Staff) -> dict[str, Any]:
    """A handoff as the queue lists it, with what this person may do with it."""
    summary = service.summary(h)
    handles = person.can_act and h.state == "claimed" and (h.agent == person.username or person.is_admin)
    return {
        "id": h.id, "conversation_id": h.conversation_id, "channel": h.channel, "reason": h.reason,
        "state": h.state, "agent": h.agent, "customer_id": summary.customer_id,
        "created_at": h.created_at.isoformat(), "recent": summary.recent, "sentiment_trend": summary.sentiment_trend,
        "can_claim": person.can_act and h.state == "queued", "can_close": handles, "can_reply": handles,
    }  # fmt: skip


@functools.cache
def _report_css() -> str:
    """The console's style sheet, inlined into the downloadable report (which must stand alone)."""
    return (Path(__file__).parent / "static" / "console.css").read_text()


def _to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
