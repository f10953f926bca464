"""Store services used by the bot: order lookup for the conversation's own customer (handoffs: core.handoff).

An order is shown only to its owner: the conversation's *verified* customer (a web session the
shop signed, see ``WEBCHAT_IDENTITY_SECRET``), or a visitor who names the order's email address
or delivery postcode, as shops ask at their order-status pages. Every miss answers alike, so the
bot never tells whether somebody else's order exists.

Customer messages are masked before Rasa and the actions see them (core/pii.py), so the email
that proves ownership never reaches them in clear: the gateway sends keyed digests of the
emails and postcode-like words of the raw message (:func:`proof_digests`) in the message's
metadata, and :func:`order_for` compares them with the digests of the order's own.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from sqlmodel import Session

from core.models import Customer, Order
from core.pii import EMAIL

_ORDER_ID = re.compile(r"#?\s*0*(\d{1,15})")
_EMAIL = re.compile(EMAIL)
_WORD = re.compile(r"[A-Za-z0-9]{2,10}")
MAX_DIGESTS = 24  # per kind and message: a long message cannot make the action hash for long


def normalize_order_id(raw: str) -> str | None:
    """``"#00100234"`` → ``"100234"``; None when it is not an order number."""
    m = _ORDER_ID.fullmatch(raw.strip())
    return m.group(1) if m else None


def normalize_postcode(raw: str) -> str:
    """``"sw1a 1aa"`` → ``"SW1A1AA"``: upper case without spaces or dashes."""
    return re.sub(r"[\s-]+", "", raw).upper()


def _digest(key: str, kind: str, value: str) -> str:
    return hmac.new(key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Proof:
    """Keyed digests of what a message could prove ownership with: emails, postcode-like words."""

    emails: frozenset[str] = field(default_factory=frozenset)
    postcodes: frozenset[str] = field(default_factory=frozenset)

    def to_metadata(self) -> dict[str, list[str]]:
        """The JSON form carried in Rasa's message metadata (``proof``)."""
        return {"email": sorted(self.emails), "postcode": sorted(self.postcodes)}

    @classmethod
    def from_metadata(cls, raw: object) -> Proof:
        """Read :meth:`to_metadata`'s form back; anything malformed is no proof."""
        if not isinstance(raw, dict):
            return cls()

        def hexes(values: object) -> frozenset[str]:
            items = values if isinstance(values, list) else []
            return frozenset(v for v in items[:MAX_DIGESTS] if isinstance(v, str) and len(v) == 32)

        return cls(hexes(raw.get("email")), hexes(raw.get("postcode")))

    def __bool__(self) -> bool:
        """Whether there is anything to compare."""
        return bool(self.emails or self.postcodes)


def proof_digests(text: str, key: str) -> Proof:
    """Digests of the emails and postcode candidates (one or two adjacent words with a digit) in ``text``."""
    emails = {_digest(key, "email", e.lower()) for e in _EMAIL.findall(text)[:MAX_DIGESTS]}
    words = _WORD.findall(_EMAIL.sub(" ", text))[: 4 * MAX_DIGESTS]
    candidates = [w for w in words if any(c.isdigit() for c in w)]
    candidates += [a + b for a, b in pairwise(words) if any(c.isdigit() for c in a + b)]
    postcodes = {_digest(key, "postcode", normalize_postcode(c)) for c in candidates[: 2 * MAX_DIGESTS]}
    return Proof(frozenset(emails), frozenset(postcodes))


def proves(order: Order, customer: Customer | None, proof: Proof, key: str) -> bool:
    """Whether ``proof`` names the order's email address or its delivery postcode."""
    if customer is not None and customer.email and _digest(key, "email", customer.email.lower()) in proof.emails:
        return True
    postcode = normalize_postcode(order.postcode or "")
    return bool(postcode) and _digest(key, "postcode", postcode) in proof.postcodes


def order_for(
    session: Session, raw_id: str, *, customer_id: str | None, proofs: Iterable[Proof] = (), key: str = ""
) -> Order | None:
    """The order with this id if it is the verified ``customer_id``'s, or if one of ``proofs`` proves it; else None.

    None whether the order does not exist or belongs to someone else: callers answer both alike.
    """
    order_id = normalize_order_id(raw_id)
    order = session.get(Order, order_id) if order_id else None
    if order is None:
        return None
    if customer_id is not None and order.customer_id == customer_id:
        return order
    owner = session.get(Customer, order.customer_id)
    return order if any(proves(order, owner, p, key) for p in proofs) else None


def describe_order(order: Order) -> str:
    """One customer-facing sentence about the order's status."""
    eta = order.eta.strftime("%A %d %B") if order.eta else None
    by_status = {
        "placed": f"Order {order.id} ({order.items}) is confirmed and will be packed soon.",
        "packed": f"Order {order.id} ({order.items}) is packed and leaves our warehouse today.",
        "shipped": f"Order {order.id} ({order.items}) is on its way with {order.carrier or 'our carrier'}"
        + (f" and should arrive by {eta}." if eta else "."),
        "delivered": f"Order {order.id} ({order.items}) was delivered"
        + (f" on {eta}." if eta else ".")
        + " If you can't find it, tell me and I'll get a colleague to help.",
        "cancelled": f"Order {order.id} was cancelled; any payment is refunded within 5 business days.",
    }
    return by_status.get(order.status, f"Order {order.id} has status '{order.status}'.")
