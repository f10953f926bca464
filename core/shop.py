"""Store services used by the bot: order lookup (handoffs live in core.handoff)."""

from __future__ import annotations

import re

from sqlmodel import Session

from core.models import Order

_ORDER_ID = re.compile(r"^#?\s*0*(\d{1,15})$")


def normalize_order_id(raw: str) -> str | None:
    """``"#00100234"`` → ``"100234"``; None when it is not an order number."""
    m = _ORDER_ID.match(raw.strip())
    return m.group(1) if m else None


def find_order(session: Session, raw_id: str) -> Order | None:
    """The order with this (normalized) id, or None."""
    order_id = normalize_order_id(raw_id)
    return session.get(Order, order_id) if order_id else None


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
