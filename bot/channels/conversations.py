"""Conversations as the gateway runs them: transcript, relay to Rasa, and the handoff loop.

One :class:`ChatService` serves every channel. A customer message is stored first (nothing is
lost when Rasa is down), then relayed to Rasa with the channel and customer id as metadata;
the NLU result (intent, sentiment) is copied onto the stored message for the staff console.
While a handoff is active Rasa is paused: it still parses and records each message, but only
the agent answers. Closing a handoff resumes Rasa and triggers an ``EXTERNAL_handoff_*``
intent, so the bot speaks first again (a CSAT question after a resolution).

Channels other than the web page (whose widget reads the transcript) register an
:class:`Outbox`; the staff side (Slack handoff channel) registers a :class:`StaffNotifier`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.channels.auth import token_digest
from bot.channels.errors import BadMessage, NotAuthenticated, RasaUnavailable
from bot.channels.limits import UNLIMITED, Rate, RateLimiter
from bot.channels.rasa_client import RasaClient, Turn
from core.handoff import (
    CANCEL_BUTTON,
    CANCEL_PAYLOAD,
    Change,
    HandoffError,
    HandoffNotFound,
    InvalidTransition,
    NotYourHandoff,
    active_handoff,
    open_handoff,
    queue_position,
    queued_notice,
    stale_queued,
    transition,
    unannounced,
)
from core.models import ChatMessage, Conversation, Handoff, utcnow
from core.pii import Redactor
from core.shop import proof_digests

log = logging.getLogger(__name__)
MAX_TEXT = 2000
CANCEL_WORDS = {"cancel", "stop waiting", "never mind", "nevermind"}
CUSTOMER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # matched whole (fullmatch: no trailing newline slips in)
# The intents a customer may send as a button payload: those of the bot's own buttons. Anything else
# (Rasa's /restart, /session_start, /back, the gateway's EXTERNAL_* intents...) is refused.
BUTTON_INTENTS = {"faq_feedback", "faq_choose", "rec_feedback", "csat", "contact_human_agent", "handoff_cancel"}
PAYLOAD_INTENT = re.compile(r"/([A-Za-z_]+)(?:\{.*\})?", re.DOTALL)
# Intents that close a handoff, by the state it ends in; the bot's rules answer each one.
CLOSING_INTENTS = {
    "resolved": "EXTERNAL_handoff_resolved",
    "returned": "EXTERNAL_handoff_returned",
    "cancelled": "EXTERNAL_handoff_cancelled",
    "expired": "EXTERNAL_handoff_expired",
}


class Outbox(Protocol):
    """Delivers new bot/agent/system messages to a customer on a pushing channel (Slack)."""

    def deliver(self, conversation: Conversation, messages: list[ChatMessage]) -> None:
        """Send ``messages`` to the conversation's customer."""


class StaffNotifier(Protocol):
    """Tells the staff about handoffs (the Slack handoff channel)."""

    def handoff_opened(self, handoff: Handoff, summary: HandoffSummary) -> tuple[str, str] | None:
        """Post a new handoff; returns (channel, message ts) of the post, if any."""

    def customer_message(self, handoff: Handoff, message: ChatMessage) -> None:
        """Relay a customer message of an active handoff to the staff thread."""

    def handoff_changed(self, handoff: Handoff, change: Change, summary: HandoffSummary) -> None:
        """Update the post after a claim, release or close."""


@dataclass(frozen=True)
class HandoffSummary:
    """What an agent needs at a glance: why, what was said lately, and how the mood went."""

    handoff_id: int
    conversation_id: str
    channel: str
    reason: str
    state: str
    agent: str | None
    customer_id: str | None
    recent: list[str]
    sentiment_trend: list[str]
    link: str


@dataclass
class ChatService:
    """The gateway's conversation logic (synchronous; the web layer runs it in worker threads)."""

    engine: Engine
    rasa: RasaClient
    public_url: str = "http://127.0.0.1:8000"
    negative_score: float = 0.9
    handoff_timeout: timedelta = timedelta(minutes=10)
    identity_secret: str = ""
    proof_key: str = ""  # keys the digests of emails/postcodes sent to the order check (core.shop.proof_digests)
    redactor: Redactor = field(default_factory=Redactor)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    customer_rate: Rate = UNLIMITED  # messages per customer
    outboxes: dict[str, Outbox] = field(default_factory=dict)
    staff: StaffNotifier | None = None

    # ----- conversations -------------------------------------------------------------------
    def start_web(self, customer_id: str | None = None, signature: str | None = None) -> tuple[Conversation, str]:
        """A new web conversation and its secret session token (only its sha256 is stored).

        With an identity secret configured, ``customer_id`` must carry the shop's HMAC-SHA256
        ``signature``; without one (demo mode) any well-formed id is accepted.
        """
        if customer_id is not None:
            if not CUSTOMER_ID.fullmatch(customer_id):
                raise BadMessage("customer_id: 1-64 letters, digits or . _ @ -")
            if self.identity_secret:
                want = hmac.new(self.identity_secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
                if not signature or not hmac.compare_digest(want.encode(), signature.encode()):
                    raise NotAuthenticated("customer_id is not signed by the shop")
        token = secrets.token_urlsafe(32)
        conv = Conversation(
            id=f"web-{secrets.token_urlsafe(12)}",
            channel="web",
            customer_id=customer_id,
            token_hash=token_digest(token),
        )
        with self._session() as s:
            s.add(conv)
            s.commit()
            s.refresh(conv)
        return conv, token

    def by_token(self, token: str | None) -> Conversation:
        """The conversation a web session token belongs to."""
        if not token:
            raise NotAuthenticated("missing session token")
        with self._session() as s:
            conv = s.exec(select(Conversation).where(Conversation.token_hash == token_digest(token))).first()
        if conv is None:
            raise NotAuthenticated("unknown session token")
        return conv

    def ensure_conversation(
        self, conversation_id: str, *, channel: str, customer_id: str | None = None, external_ref: str | None = None
    ) -> Conversation:
        """Get or create a conversation of a channel that identifies customers itself (Slack)."""
        with self._session() as s:
            conv = s.get(Conversation, conversation_id)
            if conv is None:
                conv = Conversation(
                    id=conversation_id, channel=channel, customer_id=customer_id, external_ref=external_ref
                )
                s.add(conv)
                s.commit()
                s.refresh(conv)
            return conv

    def get(self, conversation_id: str) -> Conversation | None:
        """A conversation by id."""
        with self._session() as s:
            return s.get(Conversation, conversation_id)

    def messages(self, conversation_id: str, after: int = 0, limit: int = 500) -> list[ChatMessage]:
        """The transcript after message id ``after``, oldest first."""
        with self._session() as s:
            return list(
                s.exec(
                    select(ChatMessage)
                    .where(ChatMessage.conversation_id == conversation_id, col(ChatMessage.id) > after)
                    .order_by(col(ChatMessage.id))
                    .limit(limit)
                )
            )

    # ----- the customer side -----------------------------------------------------------------
    def customer_says(self, conv: Conversation, text: str, payload: str | None = None) -> list[ChatMessage]:
        """Store a customer message and run the turn; returns the new transcript messages.

        ``payload`` is a button's payload (``/intent{...}``) sent to Rasa instead of ``text``.
        """
        self.limiter.check(f"customer:{conv.customer_id or conv.id}", self.customer_rate, "messages")
        raw = (text or "").strip()
        # a card split over two messages: the previous one matters only when this one begins with digits
        previous = self._last_customer_text(conv.id) if self.redactor.may_continue(raw) else ""
        text = self.redactor.redact_continuation(previous, raw)
        if payload is not None:
            payload = _checked_payload(self.redactor.redact(payload.strip()))
        if len(text) > MAX_TEXT:
            raise BadMessage(f"the message is longer than {MAX_TEXT} characters")
        # typed text is never a command: Rasa reads a leading "/" as an intent (/restart, /csat{...})
        to_rasa = payload or text.lstrip("/ ")
        if not to_rasa:
            raise BadMessage("the message is empty")
        mine = self._store(conv.id, [_msg(conv.id, "customer", conv.customer_id or "", text or to_rasa)])[0]
        self._retry_resume(conv.id)
        with self._session() as s:
            active = active_handoff(s, conv.id)
        if (
            active is not None
            and active.state == "queued"
            and (to_rasa == CANCEL_PAYLOAD or text.lower() in CANCEL_WORDS)
        ):
            assert active.id is not None
            return [mine, *self._close(active.id, "cancel", actor="customer", note="cancelled by the customer")]
        if to_rasa == CANCEL_PAYLOAD:  # a stale Cancel button: nothing to cancel
            return [
                mine,
                *self._system(conv, "You're not waiting for a colleague right now. How can I help?", push=True),
            ]
        # while a person has the conversation Rasa is paused already; otherwise it holds back for a very upset customer
        hold = None if active is not None else self.negative_score
        try:
            turn = self.rasa.turn(conv.id, to_rasa, self._metadata(conv, raw), hold)
        except RasaUnavailable:
            note = "Sorry, I can't answer right now. Your message is saved; please try again in a minute."
            return [mine, *self._system(conv, note, push=True)]
        new = [mine, *self._store_turn(mine, turn)]
        if active is not None:
            if self.staff is not None:
                self._safely(self.staff.customer_message, active, mine)
        else:
            new += self._after_bot_turn(conv, mine, held=turn.held)
        self._push(conv, new[1:])
        return new

    def _last_customer_text(self, conversation_id: str) -> str:
        """The conversation's latest stored (masked) customer message, or ""."""
        with self._session() as s:
            last = s.exec(
                select(ChatMessage.text)
                .where(ChatMessage.conversation_id == conversation_id, ChatMessage.role == "customer")
                .order_by(col(ChatMessage.id).desc())
                .limit(1)
            ).first()
        return last or ""

    def _metadata(self, conv: Conversation, raw_text: str) -> dict[str, Any]:
        """What Rasa's actions may trust about the turn (only the gateway can reach Rasa's REST channel).

        ``customer_verified``: the shop signed the customer id (web chat with ``WEBCHAT_IDENTITY_SECRET``);
        ``proof``: keyed digests of the emails and postcodes in the unmasked text, for the order check.
        """
        verified = conv.channel == "web" and bool(self.identity_secret) and conv.customer_id is not None
        proof = proof_digests(raw_text, self.proof_key).to_metadata()
        return {"channel": conv.channel, "customer_id": conv.customer_id, "customer_verified": verified,
                "proof": proof}  # fmt: skip

    def _after_bot_turn(self, conv: Conversation, mine: ChatMessage, *, held: bool) -> list[ChatMessage]:
        """A handoff the bot just opened gets announced; a very upset customer (Rasa ``held``) gets one opened."""
        with self._session() as s:
            handoff = active_handoff(s, conv.id)
            extra: list[ChatMessage] = []
            if handoff is None and held:
                handoff = open_handoff(
                    s,
                    conversation_id=conv.id,
                    reason="negative_sentiment",
                    channel=conv.channel,
                    last_message=mine.text,
                )
                position = queue_position(s, handoff)
                s.commit()
                s.refresh(handoff)
                note = "I'm sorry this has been frustrating. " + queued_notice(handoff.id, position)
                extra = self._system(conv, note, buttons=[CANCEL_BUTTON])
        if handoff is not None:
            self.announce_pending()
        return extra

    def _store_turn(self, mine: ChatMessage, turn: Turn) -> list[ChatMessage]:
        """In one transaction: the NLU's intent and sentiment onto the customer's message, and the bot's replies."""
        raw_intent, raw_sentiment = turn.parse.get("intent"), turn.parse.get("sentiment")
        intent: dict[str, Any] = raw_intent if isinstance(raw_intent, dict) else {}
        sentiment: dict[str, Any] = raw_sentiment if isinstance(raw_sentiment, dict) else {}
        replies = [_from_rasa(mine.conversation_id, r) for r in turn.replies]
        with self._session() as s:
            row = s.get(ChatMessage, mine.id)
            if row is not None:
                row.intent, row.confidence = intent.get("name"), intent.get("confidence")
                row.sentiment, row.sentiment_score = sentiment.get("label"), sentiment.get("score")
                s.add(row)
            for m in replies:
                s.add(m)
            conv = s.get(Conversation, mine.conversation_id)
            if conv is not None and replies:
                conv.last_activity_at = utcnow()
                s.add(conv)
            s.commit()
            for m in replies:
                s.refresh(m)
            if row is not None:
                s.refresh(row)
                mine.intent, mine.confidence = row.intent, row.confidence
                mine.sentiment, mine.sentiment_score = row.sentiment, row.sentiment_score
        return replies

    # ----- the staff side ----------------------------------------------------------------------
    def claim(self, handoff_id: int, agent: str) -> Change:
        """An agent takes the handoff (of two at once, one wins); the customer is told who joined."""
        with self._session() as s:
            change = transition(s, handoff_id, "claim", actor=agent)
            s.commit()
        conv = self._conversation_of(change.handoff)
        self._system(conv, f"{agent} from our support team has joined the conversation.", push=True)
        self._notify_change(change)
        return change

    def release(self, handoff_id: int, agent: str, *, override: bool = False) -> Change:
        """Put a claimed handoff back in the queue."""
        with self._session() as s:
            change = transition(s, handoff_id, "release", actor=agent, override=override)
            s.commit()
        self._notify_change(change)
        return change

    def resolve(self, handoff_id: int, agent: str, *, override: bool = False) -> Change:
        """Close as resolved: the bot comes back and asks for a rating."""
        return self._finish(handoff_id, "resolve", agent, override)

    def hand_back(self, handoff_id: int, agent: str, *, override: bool = False) -> Change:
        """Return the customer to the bot without a resolution."""
        return self._finish(handoff_id, "hand_back", agent, override)

    def agent_says(self, handoff_id: int, agent: str, text: str, *, override: bool = False) -> ChatMessage:
        """A claimed handoff's agent writes to the customer."""
        text = (text or "").strip()
        if not text:
            raise BadMessage("the reply is empty")
        if len(text) > MAX_TEXT:
            raise BadMessage(f"the reply is longer than {MAX_TEXT} characters")
        with self._session() as s:
            handoff = s.get(Handoff, handoff_id)
        if handoff is None:
            raise HandoffNotFound(f"handoff #{handoff_id} does not exist")
        if handoff.state != "claimed":
            raise InvalidTransition(f"handoff #{handoff_id} is {handoff.state}: claim it before replying")
        if handoff.agent != agent and not override:
            raise NotYourHandoff(f"handoff #{handoff_id} is claimed by {handoff.agent}")
        conv = self._conversation_of(handoff)
        text = self.redactor.redact(text)  # an agent's reply is stored and relayed like a customer's: masked
        message = self._store(conv.id, [_msg(conv.id, "agent", agent, text)])[0]
        try:
            self.rasa.record_agent_message(conv.id, text, agent)
        except RasaUnavailable:
            log.warning("agent message not copied to Rasa's tracker for %s", conv.id)
        self._push(conv, [message])
        return message

    def summary(self, handoff: Handoff) -> HandoffSummary:
        """The agent's overview of a handoff (for Slack posts and the console queue)."""
        with self._session() as s:
            conv = s.get(Conversation, handoff.conversation_id)
            customer = list(
                s.exec(
                    select(ChatMessage)
                    .where(ChatMessage.conversation_id == handoff.conversation_id, ChatMessage.role == "customer")
                    .order_by(col(ChatMessage.id).desc())
                    .limit(5)
                )
            )[::-1]
        assert handoff.id is not None
        return HandoffSummary(
            handoff_id=handoff.id,
            conversation_id=handoff.conversation_id,
            channel=handoff.channel,
            reason=handoff.reason,
            state=handoff.state,
            agent=handoff.agent,
            customer_id=conv.customer_id if conv else None,
            recent=[m.text for m in customer[-3:]],
            sentiment_trend=[m.sentiment or "?" for m in customer],
            link=f"{self.public_url}/console/conversations/{handoff.conversation_id}",
        )

    # ----- housekeeping (the gateway's background loop) ----------------------------------------
    def expire_stale(self) -> int:
        """Expire queued handoffs nobody claimed in time; the bot tells the customer and resumes."""
        with self._session() as s:
            stale = [h.id for h in stale_queued(s, older_than=self.handoff_timeout) if h.id is not None]
        done = 0
        for handoff_id in stale:
            try:
                self._close(handoff_id, "expire", actor="system", note="nobody claimed it in time")
                done += 1
            except HandoffError as exc:  # an agent's claim won the race: nothing to expire
                log.info("handoff #%s not expired: %s", handoff_id, exc)
        return done

    def announce_pending(self) -> int:
        """Post queued handoffs the staff have not been told about; returns how many."""
        with self._session() as s:
            pending = unannounced(s)
        for handoff in pending:
            posted = self._safely(self.staff.handoff_opened, handoff, self.summary(handoff)) if self.staff else None
            with self._session() as s:
                row = s.get(Handoff, handoff.id)
                if row is None:
                    continue
                row.announced_at = utcnow()
                if posted:
                    row.slack_channel, row.slack_ts = posted
                s.add(row)
                s.commit()
        return len(pending)

    def resume_pending(self) -> int:
        """Retry resuming the bot for closed handoffs whose first attempt failed (Rasa was down)."""
        pending = self._unresumed()
        for handoff in pending:
            self._resume_bot(handoff)
        return len(pending)

    # ----- internals -----------------------------------------------------------------------------
    def _session(self) -> Session:
        """Objects outlive their session here (returned to the web layer), so commits do not expire them."""
        return Session(self.engine, expire_on_commit=False)

    def _finish(self, handoff_id: int, action: str, agent: str, override: bool) -> Change:
        change, _ = self._transition_and_resume(handoff_id, action, agent, f"by {agent}", override)
        return change

    def _close(self, handoff_id: int, action: str, *, actor: str, note: str) -> list[ChatMessage]:
        """Cancel or expire: the state change, then the bot's words (returned)."""
        _, said = self._transition_and_resume(handoff_id, action, actor, note, False)
        return said

    def _transition_and_resume(
        self, handoff_id: int, action: str, actor: str, note: str, override: bool
    ) -> tuple[Change, list[ChatMessage]]:
        with self._session() as s:
            change = transition(s, handoff_id, action, actor=actor, note=note, override=override)
            s.commit()
        said = self._resume_bot(change.handoff)
        self._notify_change(change)
        return change, said

    def _resume_bot(self, handoff: Handoff) -> list[ChatMessage]:
        """Resume Rasa and let it speak (the closing intent); on failure the loop retries later."""
        conv = self._conversation_of(handoff)
        intent = CLOSING_INTENTS.get(handoff.state)
        try:
            self.rasa.resume(conv.id)
            replies = self.rasa.trigger(conv.id, intent) if intent else []
        except RasaUnavailable:
            log.warning("could not resume the bot for %s; will retry", conv.id)
            return []
        with self._session() as s:  # this one and any older close of the conversation: nothing left to replay
            s.execute(
                update(Handoff)
                .where(
                    col(Handoff.conversation_id) == conv.id,
                    col(Handoff.id) <= handoff.id,
                    col(Handoff.closed_at).is_not(None),
                    col(Handoff.bot_resumed_at).is_(None),
                )
                .values(bot_resumed_at=utcnow())
            )
            s.commit()
        stored = self._store(conv.id, [_from_rasa(conv.id, r) for r in replies])
        self._push(conv, stored)
        return stored

    def _retry_resume(self, conversation_id: str) -> None:
        for handoff in self._unresumed(conversation_id):
            self._resume_bot(handoff)

    def _unresumed(self, conversation_id: str | None = None) -> list[Handoff]:
        """Closed handoffs whose bot has not been resumed yet: the newest of each conversation."""
        query = select(Handoff).where(col(Handoff.closed_at).is_not(None), col(Handoff.bot_resumed_at).is_(None))
        if conversation_id is not None:
            query = query.where(Handoff.conversation_id == conversation_id)
        with self._session() as s:
            rows = list(s.exec(query.order_by(col(Handoff.id).desc())))
        newest: dict[str, Handoff] = {}
        for h in rows:
            newest.setdefault(h.conversation_id, h)
        return list(newest.values())

    def _notify_change(self, change: Change) -> None:
        if self.staff is not None:
            self._safely(self.staff.handoff_changed, change.handoff, change, self.summary(change.handoff))

    def _conversation_of(self, handoff: Handoff) -> Conversation:
        conv = self.get(handoff.conversation_id)
        if conv is None:  # a conversation that reached Rasa without the gateway (REST API)
            conv = self.ensure_conversation(handoff.conversation_id, channel=handoff.channel)
        return conv

    def _system(
        self, conv: Conversation, text: str, *, buttons: list[dict[str, str]] | None = None, push: bool = False
    ) -> list[ChatMessage]:
        data = {"buttons": buttons} if buttons else {}
        stored = self._store(conv.id, [_msg(conv.id, "system", "", text, data)])
        if push:
            self._push(conv, stored)
        return stored

    def _store(self, conversation_id: str, messages: Iterable[ChatMessage]) -> list[ChatMessage]:
        rows = list(messages)
        if not rows:
            return []
        with self._session() as s:
            for m in rows:
                s.add(m)
            conv = s.get(Conversation, conversation_id)
            if conv is not None:
                conv.last_activity_at = utcnow()
                s.add(conv)
            s.commit()
            for m in rows:
                s.refresh(m)
        return rows

    def _push(self, conv: Conversation, messages: list[ChatMessage]) -> None:
        outbox = self.outboxes.get(conv.channel)
        if outbox is not None and messages:
            self._safely(outbox.deliver, conv, messages)

    @staticmethod
    def _safely(fn: Any, *args: Any) -> Any:
        """Call a notifier; a failing Slack must not break the web chat (logged, retried by people)."""
        try:
            return fn(*args)
        except Exception:  # isolation boundary: an external notifier never breaks the conversation
            log.exception("notifier %s failed", getattr(fn, "__qualname__", fn))
            return None


def _checked_payload(payload: str) -> str:
    """A button payload the customer may send (one of the bot's button intents), or :class:`BadMessage`."""
    if len(payload) > MAX_TEXT:
        raise BadMessage(f"a button payload has at most {MAX_TEXT} characters")
    m = PAYLOAD_INTENT.fullmatch(payload)
    if m is None or m.group(1) not in BUTTON_INTENTS:
        raise BadMessage("that is not one of the bot's buttons")
    return payload


def _msg(conversation_id: str, role: str, author: str, text: str, data: dict[str, Any] | None = None) -> ChatMessage:
    return ChatMessage(conversation_id=conversation_id, role=role, author=author, text=text[:10000],
                       data=json.dumps(data or {}))  # fmt: skip


def _from_rasa(conversation_id: str, reply: dict[str, Any]) -> ChatMessage:
    """A bot message from Rasa's REST output: text, buttons, custom payloads (product cards)."""
    data = {k: reply[k] for k in ("buttons", "custom", "image", "attachment") if reply.get(k)}
    return _msg(conversation_id, "bot", "bot", str(reply.get("text") or ""), data)


def message_public(m: ChatMessage, *, staff: bool = False) -> dict[str, Any]:
    """A message as the widget (or, with ``staff``, the console) receives it."""
    out: dict[str, Any] = {
        "id": m.id, "role": m.role, "author": m.author if m.role == "agent" or staff else "",
        "text": m.text, "data": json.loads(m.data or "{}"), "at": m.created_at.isoformat(),
    }  # fmt: skip
    if staff:
        out.update(intent=m.intent, confidence=m.confidence, sentiment=m.sentiment, sentiment_score=m.sentiment_score)
    return out
