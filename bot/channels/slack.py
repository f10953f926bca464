"""Slack: customers talk to the bot in a direct message; staff get handoffs in a channel.

One slack-bolt app (manifest: ``bot/channels/slack_manifest.yml``) behind ``POST /slack/events``:

- **customers**: a DM to the app is a customer turn (conversation ``slack-<team>-<user>``); the
  bot's and agents' messages go back to the DM, buttons included;
- **risk team**: sentiment alerts posted by ``monitoring.sinks`` carry an Acknowledge button,
  recorded here with who pressed it;
- **staff**: each new handoff is posted to ``SLACK_HANDOFF_CHANNEL`` with a summary, the transcript
  link, the sentiment trend and Claim / Resolve buttons; a staff reply in the post's thread
  reaches the customer; customer messages of an active handoff are copied into the thread.
  Slack users act as the staff account whose ``slack_user_id`` they are.

Every request's signature and timestamp are checked over the raw body before anything reads it
(forged, stale or unsigned: 401, whatever the body); a signed body that is not UTF-8, not a JSON
object or nested deeper than 64 levels gets 400; only then does bolt parse and dispatch it (and
check the signature once more). Slack redelivers an event it thinks was lost
(``X-Slack-Retry-Num``); each ``event_id`` is acted on once (table ``slack_event``), so a retry
never makes the bot answer twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt import Ack, App, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.channels.auth import staff_by_slack_id
from bot.channels.conversations import ChatService, HandoffSummary
from bot.channels.errors import BadMessage, ChannelError
from core.errors import CoreError
from core.handoff import Change
from core.http_errors import json_too_deep, valid_unicode
from core.models import ChatMessage, Conversation, Handoff, SlackEvent
from core.settings import Settings
from monitoring.sinks import acknowledge

log = logging.getLogger(__name__)
MAX_SLACK_TEXT = 3000
NOT_LINKED = "your Slack account is not linked to a support agent account (ask an admin: add-user --slack-user-id)."
MAX_CLOCK_SKEW_S = 300  # Slack's advice (and bolt's): older or newer timestamps are replays
MAX_SLACK_JSON_DEPTH = 64  # Slack's own payloads (blocks in messages and views) nest about 12 levels
NOT_UNICODE = "the message is not valid Unicode"


class BadSlackRequest(ChannelError):
    """A correctly signed request whose body cannot be read (not UTF-8, not a JSON object, nested too deep)."""


def signature_ok(secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float) -> bool:
    """Whether ``signature`` is Slack's ``v0`` HMAC-SHA256 of ``body`` at a ``timestamp`` close to ``now``.

    Computed over the raw bytes, before anything decodes or parses them; any malformed header is
    simply not a valid signature (never an exception).

    Args:
        secret: The app's signing secret.
        body: The raw request body.
        timestamp: The ``X-Slack-Request-Timestamp`` header (Unix seconds).
        signature: The ``X-Slack-Signature`` header (``v0=<hex>``).
        now: The current Unix time.

    Returns:
        True for a genuine, fresh request.
    """
    if not timestamp or not signature or not secret:
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not signature.isascii():
        return False
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_S:
        return False
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={digest}".encode(), signature.encode())


def check_slack_body(body: bytes, content_type: str) -> None:
    """Check that a signed body is one bolt can read.

    Mirrors how bolt parses (JSON when the type says so or it starts with ``{``; else a form,
    whose ``payload`` field is JSON), so a body passing here parses the same way there.

    Raises:
        BadSlackRequest: not UTF-8, not JSON where JSON is due, nested too deep, or not an object.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadSlackRequest("the body is not UTF-8") from exc
    if not text:
        return
    if content_type.split(";")[0].strip().lower() == "application/json" or text.startswith("{"):
        document: str | None = text
    elif "payload" in text:
        document = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
    else:
        document = None  # a plain form: bolt reads its fields as they are
    if document is not None:
        if json_too_deep(document, MAX_SLACK_JSON_DEPTH):
            raise BadSlackRequest(f"the body's JSON nests deeper than {MAX_SLACK_JSON_DEPTH} levels")
        try:
            data = json.loads(document)
        except (ValueError, RecursionError) as exc:
            raise BadSlackRequest("the body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise BadSlackRequest("the body is not a JSON object")


def first_time(service: ChatService, event_id: str | None) -> bool:
    """Record an event id; False when it was already handled (a Slack retry)."""
    if not event_id:
        return True
    try:
        with Session(service.engine) as s:
            s.add(SlackEvent(event_id=event_id[:100]))
            s.commit()
        return True
    except IntegrityError:
        return False


def _buttons_block(buttons: list[dict[str, str]], action_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": b["title"][:75]}, "action_id": f"{action_id}_{i}",
             "value": json.dumps({"title": b["title"], "payload": b.get("payload") or b["title"]})[:2000]}
            for i, b in enumerate(buttons[:5])
        ],
    }  # fmt: skip


def _plain(text: str) -> dict[str, Any]:
    """A section block whose text Slack shows literally (no mrkdwn, no mentions)."""
    return {"type": "section", "text": {"type": "plain_text", "text": text[:MAX_SLACK_TEXT] or " "}}


class SlackOutbox:
    """Delivers bot, agent and system messages to a customer's Slack DM."""

    def __init__(self, client: WebClient) -> None:
        """``client``: the app's Web API client."""
        self.client = client

    def deliver(self, conversation: Conversation, messages: list[ChatMessage]) -> None:
        """Post each message to the DM channel; buttons become Slack buttons."""
        for m in messages:
            data = json.loads(m.data or "{}")
            card = data.get("custom") if isinstance(data.get("custom"), dict) else None
            text = m.text or (f"{card.get('name')} — ${card.get('price')}" if card else "")
            if not text and not data.get("buttons"):
                continue
            prefix = f"{m.author} (support): " if m.role == "agent" else ""
            blocks = [_plain(prefix + text)]
            if data.get("buttons"):
                blocks.append(_buttons_block(data["buttons"], "customer_button"))
            self.client.chat_postMessage(channel=str(conversation.external_ref), text=(prefix + text)[:MAX_SLACK_TEXT],
                                         blocks=blocks)  # fmt: skip


class SlackStaff:
    """The staff side in Slack: the handoff channel's posts, their threads and their buttons."""

    def __init__(self, client: WebClient, channel: str) -> None:
        """``channel``: the id of the handoff channel."""
        self.client = client
        self.channel = channel

    def blocks(self, s: HandoffSummary) -> list[dict[str, Any]]:
        """The post of one handoff: summary, link, trend, and the buttons its state allows."""
        head = f"Handoff #{s.handoff_id} · {s.state}" + (f" · {s.agent}" if s.agent else "")
        facts = (f"Reason: {s.reason} · channel: {s.channel} · customer: {s.customer_id or 'unknown'}\n"
                 f"Sentiment: {' → '.join(s.sentiment_trend) or 'n/a'}\n"
                 + "\n".join(f"> {line[:300]}" for line in s.recent))  # fmt: skip
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
            _plain(facts),
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{s.link}|Open the transcript>"}]},
        ]
        actions = []
        if s.state == "queued":
            actions.append(("Claim", "handoff_claim", "primary"))
        if s.state == "claimed":
            actions.append(("Resolve", "handoff_resolve", "primary"))
        if actions:
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": t}, "action_id": a, "style": st,
                 "value": str(s.handoff_id)} for t, a, st in actions]})  # fmt: skip
        return blocks

    def handoff_opened(self, handoff: Handoff, summary: HandoffSummary) -> tuple[str, str] | None:
        """Post the new handoff; returns where it landed."""
        r = self.client.chat_postMessage(channel=self.channel, text=f"New handoff #{handoff.id} ({handoff.reason})",
                                         blocks=self.blocks(summary))  # fmt: skip
        return str(r["channel"]), str(r["ts"])

    def customer_message(self, handoff: Handoff, message: ChatMessage) -> None:
        """Copy a customer message into the handoff's thread."""
        if handoff.slack_ts and handoff.slack_channel:
            self.client.chat_postMessage(channel=handoff.slack_channel, thread_ts=handoff.slack_ts,
                                         text=f"Customer: {message.text}"[:MAX_SLACK_TEXT],
                                         blocks=[_plain(f"Customer: {message.text}")])  # fmt: skip

    def handoff_changed(self, handoff: Handoff, change: Change, summary: HandoffSummary) -> None:
        """Update the post's state and buttons, and note the change in the thread."""
        if not (handoff.slack_ts and handoff.slack_channel):
            return
        text = f"Handoff #{handoff.id}: {change.to_state}"
        self.client.chat_update(channel=handoff.slack_channel, ts=handoff.slack_ts, text=text,
                                blocks=self.blocks(summary))  # fmt: skip
        who = f" by {handoff.agent}" if handoff.agent and change.to_state == "claimed" else ""
        self.client.chat_postMessage(channel=handoff.slack_channel, thread_ts=handoff.slack_ts,
                                     text=f"{change.from_state} → {change.to_state}{who}")  # fmt: skip


def build_slack_app(service: ChatService, settings: Settings, client: WebClient | None = None) -> App:
    """The bolt app with its listeners; registers the Slack outbox and staff notifier on ``service``."""
    client = client or WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    app = App(
        signing_secret=settings.slack_signing_secret, client=client,  # the client carries the bot token
        token_verification_enabled=False,  # no Slack call at start-up; the first event resolves the bot user
    )  # fmt: skip
    service.outboxes["slack"] = SlackOutbox(client)
    if settings.slack_handoff_channel:
        service.staff = SlackStaff(client, settings.slack_handoff_channel)

    @app.event("message")
    def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, joins, our own posts
        if not first_time(service, body.get("event_id")):
            log.info("Slack retry of %s ignored", body.get("event_id"))
            return
        if event.get("channel_type") == "im":
            _customer_turn(service, body.get("team_id", ""), event, str(event.get("text") or ""), None)
        elif event.get("thread_ts") and event.get("channel") == settings.slack_handoff_channel:
            _staff_reply(service, client, event)

    @app.action(re.compile(r"^customer_button_\d$"))
    def on_customer_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        value = json.loads(action.get("value") or "{}")
        event = {"user": body["user"]["id"], "channel": body["channel"]["id"]}
        _customer_turn(service, body.get("team", {}).get("id", ""), event, value.get("title", ""), value.get("payload"))

    @app.action("handoff_claim")
    def on_claim(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        _staff_action(service, client, body, int(action["value"]), "claim")

    @app.action("handoff_resolve")
    def on_resolve(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        _staff_action(service, client, body, int(action["value"]), "resolve")

    @app.action("alert_ack")
    def on_alert_ack(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user, channel = body["user"]["id"], body["channel"]["id"]
        staff = staff_by_slack_id(service.engine, user)
        incident = acknowledge(service.engine, int(action["value"]), staff.username if staff else f"slack:{user}",
                               "slack")  # fmt: skip
        text = (f"Incident #{incident.id} is acknowledged by {incident.acked_by}." if incident
                else f"There is no incident #{action['value']}.")  # fmt: skip
        client.chat_postEphemeral(channel=channel, user=user, text=text)

    return app


def _customer_turn(service: ChatService, team: str, event: dict[str, Any], text: str, payload: str | None) -> None:
    conv = service.ensure_conversation(f"slack-{team}-{event['user']}", channel="slack", customer_id=None,
                                       external_ref=str(event["channel"]))  # fmt: skip
    try:
        if not valid_unicode(text) or (payload is not None and not valid_unicode(payload)):
            raise BadMessage(NOT_UNICODE)  # a lone surrogate: no database, Rasa or Slack would take it
        service.customer_says(conv, text, payload)  # replies go out through the Slack outbox
    except (ChannelError, CoreError) as exc:  # empty, too long, reserved: the customer is told why
        note = ChatMessage(conversation_id=conv.id, role="system", text=f"Not sent: {exc}")
        service.outboxes["slack"].deliver(conv, [note])


def _staff_action(service: ChatService, client: WebClient, body: dict[str, Any], handoff_id: int, what: str) -> None:
    user, channel = body["user"]["id"], body["channel"]["id"]
    staff = staff_by_slack_id(service.engine, user)
    if staff is None or staff.role not in {"agent", "admin"}:
        client.chat_postEphemeral(channel=channel, user=user, text=NOT_LINKED)
        return
    try:
        if what == "claim":
            service.claim(handoff_id, staff.username)
        else:
            service.resolve(handoff_id, staff.username, override=staff.role == "admin")
    except CoreError as exc:
        client.chat_postEphemeral(channel=channel, user=user, text=str(exc))


def _staff_reply(service: ChatService, client: WebClient, event: dict[str, Any]) -> None:
    with Session(service.engine) as s:
        handoff = s.exec(
            select(Handoff).where(Handoff.slack_channel == event["channel"], Handoff.slack_ts == event["thread_ts"])
        ).first()
    if handoff is None or handoff.id is None:
        return
    staff = staff_by_slack_id(service.engine, event["user"])
    if staff is None:
        client.chat_postEphemeral(channel=event["channel"], user=event["user"], text=f"Not sent: {NOT_LINKED}")
        return
    text = str(event.get("text") or "")
    try:
        if not valid_unicode(text):
            raise BadMessage(NOT_UNICODE)
        service.agent_says(handoff.id, staff.username, text, override=staff.role == "admin")
    except (ChannelError, CoreError) as exc:  # not claimed, closed, empty: the agent is told why
        client.chat_postEphemeral(channel=event["channel"], user=event["user"], text=f"Not sent: {exc}")


def attach_slack(app: FastAPI, service: ChatService, settings: Settings, client: WebClient | None = None) -> App:
    """Mount ``POST /slack/events`` (events, interactivity and URL verification) on the gateway."""
    bolt = build_slack_app(service, settings, client)

    secret = settings.slack_signing_secret

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        headers = request.headers
        if not signature_ok(secret, body, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature"),
                            time.time()):  # fmt: skip
            log.warning("Slack request refused: missing, wrong or stale signature")  # never the body
            return JSONResponse({"detail": "invalid or missing Slack signature"}, status_code=401)
        try:
            check_slack_body(body, headers.get("content-type", ""))
        except BadSlackRequest as exc:
            log.warning("signed Slack request refused: %s", exc)
            return JSONResponse({"detail": str(exc)}, status_code=400)
        response: BoltResponse = await anyio.to_thread.run_sync(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    return bolt
