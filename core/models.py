"""SQLModel tables of the application database.

Rasa keeps its own ``events`` table (tracker store); these tables hold what the
business needs in a queryable shape. Schema changes go through Alembic
(``core/migrations``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Column, Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(UTC)


class Customer(SQLModel, table=True):
    """A store customer."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320, index=True)


class OrderBase(SQLModel):
    """Fields of an order that the bot may tell its customer."""

    status: str = Field(max_length=32)  # placed | packed | shipped | delivered | cancelled
    items: str = Field(max_length=2000)
    total: float
    carrier: str | None = Field(default=None, max_length=64)
    eta: datetime | None = None


class Order(OrderBase, table=True):
    """An order in the shop (the demo store seeds a few)."""

    __tablename__ = "shop_order"

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customer.id", index=True, max_length=64)
    placed_at: datetime = Field(default_factory=utcnow)
    # The delivery address's postcode: with the customer's email, what an anonymous visitor may prove
    # ownership with (core.shop.order_for).
    postcode: str | None = Field(default=None, max_length=16)


ACTIVE_HANDOFF_STATES = ("queued", "claimed")


class Handoff(SQLModel, table=True):
    """A conversation handed to a person: queued → claimed → resolved (or cancelled, expired, returned).

    At most one active (queued or claimed) handoff per conversation, enforced by a partial unique index.
    Every state change is also written to ``handoff_transition`` (who, when).
    """

    __table_args__ = (
        Index(
            "uq_handoff_active",
            "conversation_id",
            unique=True,
            sqlite_where=text("state IN ('queued', 'claimed')"),
            postgresql_where=text("state IN ('queued', 'claimed')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(index=True, max_length=255)  # Rasa's sender id
    channel: str = Field(default="rest", max_length=32)  # web | slack | rest
    reason: str = Field(max_length=64)  # explicit_request | repeated_fallback | faq_not_helpful | negative_sentiment
    state: str = Field(default="queued", max_length=16, index=True)
    agent: str | None = Field(default=None, max_length=100)  # staff username that claimed it
    last_message: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    claimed_at: datetime | None = None
    closed_at: datetime | None = None
    announced_at: datetime | None = None  # posted to the staff channel (Slack) / consoles
    bot_resumed_at: datetime | None = None  # closed and Rasa resumed (retried until it succeeds)
    slack_channel: str | None = Field(default=None, max_length=64)
    slack_ts: str | None = Field(default=None, max_length=64)  # the staff channel message; replies are its thread


class HandoffTransition(SQLModel, table=True):
    """One state change of a handoff: from, to, who and when."""

    __tablename__ = "handoff_transition"

    id: int | None = Field(default=None, primary_key=True)
    handoff_id: int = Field(foreign_key="handoff.id", index=True)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    actor: str = Field(max_length=100)  # staff username, "customer", "bot" or "system"
    at: datetime = Field(default_factory=utcnow)
    note: str = Field(default="", max_length=500)


class Conversation(SQLModel, table=True):
    """A customer's conversation as the channels gateway sees it (web page, Slack)."""

    id: str = Field(primary_key=True, max_length=255)  # also Rasa's sender id
    channel: str = Field(max_length=32)  # web | slack
    customer_id: str | None = Field(default=None, max_length=64, index=True)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)  # sha256 of the web session token
    external_ref: str | None = Field(default=None, max_length=255)  # Slack: the DM channel id
    created_at: datetime = Field(default_factory=utcnow)
    last_activity_at: datetime = Field(default_factory=utcnow, index=True)


class ChatMessage(SQLModel, table=True):
    """One message of a conversation's transcript, from the customer, the bot, an agent or the system."""

    __tablename__ = "chat_message"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=255)
    role: str = Field(max_length=16)  # customer | bot | agent | system
    author: str = Field(default="", max_length=100)
    text: str = Field(default="", max_length=10000)
    data: str = Field(default="{}", max_length=20000)  # JSON: buttons, custom payloads (product cards)
    intent: str | None = Field(default=None, max_length=100)
    confidence: float | None = None
    sentiment: str | None = Field(default=None, max_length=16)
    sentiment_score: float | None = None
    created_at: datetime = Field(default_factory=utcnow)


class StaffUser(SQLModel, table=True):
    """A support, risk or admin person who signs in to the console (password stored as a scrypt hash)."""

    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=100)
    password_hash: str = Field(max_length=300)
    role: str = Field(max_length=16)  # agent | risk | admin
    slack_user_id: str | None = Field(default=None, max_length=64, unique=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    failed_logins: int = 0  # wrong passwords in a row (reset by a successful sign-in)
    locked_until: datetime | None = None  # sign-ins refused until then (back-off after repeated failures)


class StaffSession(SQLModel, table=True):
    """A signed-in console session; the cookie holds a random token, the table its sha256."""

    __tablename__ = "staff_session"

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class CsatRating(SQLModel, table=True):
    """A customer's 1-5 satisfaction rating after a handoff."""

    __tablename__ = "csat_rating"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(index=True, max_length=255)
    handoff_id: int | None = Field(default=None, index=True)
    rating: int
    created_at: datetime = Field(default_factory=utcnow, index=True)


class SlackEvent(SQLModel, table=True):
    """A Slack event id already handled (Slack retries deliveries; each is acted on once)."""

    __tablename__ = "slack_event"

    event_id: str = Field(primary_key=True, max_length=100)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class Turn(SQLModel, table=True):
    """One user message as understood by the NLU, from Rasa's tracker store or its event broker."""

    id: int | None = Field(default=None, primary_key=True)
    tracker_event_id: int | None = Field(default=None, unique=True, index=True)  # events.id (tracker store input)
    message_id: str | None = Field(default=None, unique=True, index=True, max_length=100)  # Rasa's id of the message
    sender_id: str = Field(index=True, max_length=255)
    channel: str | None = Field(default=None, max_length=32)
    text: str = Field(max_length=10000)
    intent: str | None = Field(default=None, max_length=100, index=True)
    confidence: float | None = None
    sentiment: str | None = Field(default=None, max_length=16)
    sentiment_score: float | None = None
    entities: str = Field(default="[]", max_length=10000)  # JSON list, Rasa format
    timestamp: datetime = Field(index=True)


class Checkpoint(SQLModel, table=True):
    """Progress marker of a stream reader (last tracker event id consumed)."""

    name: str = Field(primary_key=True, max_length=64)
    position: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class FaqEntry(SQLModel, table=True):
    """One FAQ of the knowledge base (imported from a KB file by ``python -m nlu.faq import``)."""

    __tablename__ = "faq_entry"

    id: str = Field(primary_key=True, max_length=100)
    question: str = Field(max_length=1000)
    answer: str = Field(max_length=10000)
    alternatives: str = Field(default="[]", max_length=20000)  # JSON list of other phrasings
    tags: str = Field(default="[]", max_length=2000)  # JSON list
    links: str = Field(default="[]", max_length=4000)  # JSON list of URLs
    intents: str = Field(default="[]", max_length=2000)  # JSON list of bot intents this entry answers
    content_hash: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class FaqVector(SQLModel, table=True):
    """A cached sentence embedding of one text of an FAQ entry (its question or an alternative phrasing)."""

    __tablename__ = "faq_vector"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: str = Field(foreign_key="faq_entry.id", index=True, max_length=100)
    model: str = Field(max_length=200, index=True)  # embedder identity; vectors of other models are ignored
    kind: str = Field(max_length=16)  # question | alternative
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32, L2-normalised


class FaqFeedback(SQLModel, table=True):
    """A customer's "helpful" / "didn't help" on an FAQ answer."""

    __tablename__ = "faq_feedback"

    id: int | None = Field(default=None, primary_key=True)
    sender_id: str = Field(index=True, max_length=255)
    entry_id: str = Field(index=True, max_length=100)
    helpful: bool
    query: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Product(SQLModel, table=True):
    """A product of the store's catalog."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=300)
    category: str = Field(max_length=200, index=True)
    price: float
    url: str = Field(default="", max_length=1000)
    description: str = Field(default="", max_length=4000)
    in_stock: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class BehaviourEvent(SQLModel, table=True):
    """Something a customer did with a product: view, cart, purchase, rating, or a click on a recommendation.

    The same (customer, product, kind, time) is stored once, so a re-imported export adds nothing.
    """

    __tablename__ = "behaviour_event"
    __table_args__ = (UniqueConstraint("customer_id", "product_id", "kind", "ts", name="uq_behaviour_event"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True, max_length=64)
    product_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=16)  # view | cart | purchase | rating | rec_click | rec_dismiss
    ts: datetime = Field(index=True)
    session_id: str = Field(default="", max_length=64)
    value: float | None = None  # the rating for kind == rating
    source: str = Field(default="import", max_length=16)  # import | chat | simulator


class RecImpression(SQLModel, table=True):
    """One product card shown to a customer in the chat (for click-through and conversion)."""

    __tablename__ = "rec_impression"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(index=True, max_length=64)
    customer_id: str = Field(index=True, max_length=64)
    product_id: str = Field(index=True, max_length=64)
    position: int
    source: str = Field(max_length=16)  # sequence | itemknn | content | popularity
    reason: str = Field(max_length=300)
    channel: str = Field(default="", max_length=32)
    shown_at: datetime = Field(default_factory=utcnow, index=True)
    # The conversation the card was shown in: its buttons count only there (empty for rows before 0008).
    conversation_id: str = Field(default="", index=True, max_length=255)


class MonitorState(SQLModel, table=True):
    """The sentiment monitor's checkpoint: the last turn it counted and its whole state, saved together."""

    __tablename__ = "monitor_state"

    name: str = Field(primary_key=True, max_length=64)
    position: int = 0  # turn.id of the last turn counted
    state: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON of monitoring.stream.Monitor
    updated_at: datetime = Field(default_factory=utcnow)


class AlertIncident(SQLModel, table=True):
    """A negative-sentiment incident: the topics that fired together, with evidence, and who acknowledged it."""

    __tablename__ = "alert_incident"

    id: int | None = Field(default=None, primary_key=True)
    engine_id: int = Field(unique=True)  # the monitor's own incident number
    state: str = Field(default="firing", max_length=16, index=True)  # firing | resolved
    opened_at: datetime = Field(index=True)
    resolved_at: datetime | None = None
    topics: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list of topic keys
    evidence: str = Field(
        default="{}", sa_column=Column(Text, nullable=False)
    )  # JSON: per topic counts, rates, examples
    acked_by: str | None = Field(default=None, max_length=100)
    acked_at: datetime | None = None
    ack_via: str | None = Field(default=None, max_length=16)  # slack | console


class AlertSilence(SQLModel, table=True):
    """Mute the alerts of one topic (or a whole dimension) for a while: tracked, never notified."""

    __tablename__ = "alert_silence"

    id: int | None = Field(default=None, primary_key=True)
    dimension: str = Field(max_length=16)  # all | intent | channel | product
    value: str = Field(default="*", max_length=100)  # the topic's value; * = every topic of the dimension
    starts_at: datetime = Field(default_factory=utcnow)
    ends_at: datetime = Field(index=True)
    created_by: str = Field(max_length=100)
    comment: str = Field(default="", max_length=500)


class AlertDelivery(SQLModel, table=True):
    """One notification of an incident to one sink (outbox: sent by the delivery loop, retried with backoff)."""

    __tablename__ = "alert_delivery"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="alert_incident.id", index=True)
    kind: str = Field(max_length=16)  # firing | repeat | resolved
    sink: str = Field(max_length=16)  # slack | webhook
    status: str = Field(default="pending", max_length=16, index=True)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    last_error: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class RefusedInput(SQLModel, table=True):
    """Input the bot refused because it did not belong to the conversation: forged ratings or card clicks,
    failed order-ownership checks (counted on the gateway's /metrics as ``storebot_refused_inputs``)."""

    __tablename__ = "refused_input"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, index=True)  # csat_not_due | rec_feedback_not_shown | order_proof_failed
    conversation_id: str = Field(max_length=255, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
