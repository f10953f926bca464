"""Purchase intent: the probability that a shopping session ends in a purchase, from its first events.

A session is a customer's events with one session id (or, without ids, events less than
30 minutes apart). Only what happened *before* the first add-to-cart or purchase is used, so
the model predicts early, when a proactive offer can still change something. Features describe
the session (views, distinct products, repeats, duration, prices, how focused it is on one
department) and the customer's past (earlier sessions, how often they ended in a purchase, how
much of the history is in this session's department). The model is a standardised logistic
regression, stored as plain numbers in JSON; the baseline it is compared with is the number of
views alone. Evaluation: the newest 20 % of sessions (by start time) are held out.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sqlmodel import Session, col, select

from core.models import BehaviourEvent, Product

FEATURES = (
    "log_views", "distinct_ratio", "log_minutes", "log_mean_price", "focus", "log_prior_sessions",
    "prior_purchase_rate", "affinity", "log_hours_since_last",
)  # fmt: skip
SESSION_GAP = timedelta(minutes=30)
STOP_KINDS = ("cart", "purchase")


@dataclass
class Event:
    """One event with what the intent model needs of its product."""

    customer: str
    product: str
    kind: str
    ts: datetime
    session: str
    department: str
    price: float


@dataclass
class SessionRow:
    """A session's features (from its events before the first cart/purchase) and its outcome."""

    customer: str
    start: datetime
    features: dict[str, float]
    purchased: bool


def load_events(session: Session, customer: str | None = None) -> list[Event]:
    """Behaviour events (all, or one customer's) with their product's department and price, by customer and time."""
    stmt = (
        select(BehaviourEvent, Product.category, Product.price)
        .join(Product, col(Product.id) == col(BehaviourEvent.product_id), isouter=True)
        .order_by(col(BehaviourEvent.customer_id), col(BehaviourEvent.ts), col(BehaviourEvent.id))
    )
    if customer is not None:
        stmt = stmt.where(BehaviourEvent.customer_id == customer)
    return [
        Event(e.customer_id, e.product_id, e.kind, e.ts, e.session_id, (cat or "").split("|")[0].strip(), price or 0.0)
        for e, cat, price in session.exec(stmt)
    ]


def split_sessions(events: list[Event]) -> list[list[Event]]:
    """Group one customer's time-ordered events into sessions (session id, else a 30-minute gap)."""
    sessions: list[list[Event]] = []
    for e in events:
        last = sessions[-1][-1] if sessions else None
        same = last is not None and (
            (e.session and e.session == last.session) or (not e.session and e.ts - last.ts < SESSION_GAP)
        )
        if same:
            sessions[-1].append(e)
        else:
            sessions.append([e])
    return sessions


def features(prefix: list[Event], past: list[list[Event]]) -> dict[str, float]:
    """Feature values of a session prefix given the customer's earlier sessions."""
    views = [e for e in prefix if e.kind not in STOP_KINDS]
    depts = Counter(e.department for e in views)
    main, main_n = depts.most_common(1)[0] if depts else ("", 0)
    history = [e for s in past for e in s]
    bought = sum(any(e.kind == "purchase" for e in s) for s in past)
    minutes = (views[-1].ts - views[0].ts).total_seconds() / 60 if views else 0.0
    since = (prefix[0].ts - past[-1][-1].ts).total_seconds() / 3600 if past else 24 * 90
    return {
        "log_views": math.log1p(len(views)),
        "distinct_ratio": len({e.product for e in views}) / max(1, len(views)),
        "log_minutes": math.log1p(max(0.0, minutes)),
        "log_mean_price": math.log1p(float(np.mean([e.price for e in views])) if views else 0.0),
        "focus": main_n / max(1, len(views)),
        "log_prior_sessions": math.log1p(len(past)),
        "prior_purchase_rate": (bought + 0.5) / (len(past) + 2),
        "affinity": sum(e.department == main for e in history) / max(1, len(history)) if history else 0.0,
        "log_hours_since_last": math.log1p(max(0.0, since)),
    }


def session_rows(events: list[Event]) -> list[SessionRow]:
    """One row per session that has at least one view before its first cart/purchase."""
    by_customer: dict[str, list[Event]] = {}
    for e in events:
        by_customer.setdefault(e.customer, []).append(e)
    rows = []
    for customer, evs in by_customer.items():
        sessions = split_sessions(evs)
        for i, s in enumerate(sessions):
            cut = next((j for j, e in enumerate(s) if e.kind in STOP_KINDS), len(s))
            if cut == 0:
                continue
            purchased = any(e.kind == "purchase" for e in s)
            rows.append(SessionRow(customer, s[0].ts, features(s[:cut], sessions[:i]), purchased))
    return rows


@dataclass
class IntentModel:
    """Standardised logistic regression over :data:`FEATURES`, plus the offer threshold."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float
    metrics: dict[str, Any]

    def probability(self, feats: dict[str, float]) -> float:
        """P(the session ends in a purchase)."""
        x = (np.array([feats[f] for f in FEATURES]) - self.mean) / self.scale
        return float(1 / (1 + math.exp(-(float(np.dot(self.coef, x)) + self.intercept))))

    def save(self, path: Path) -> None:
        """Write as JSON."""
        path.write_text(json.dumps({"features": FEATURES, **self.__dict__}, indent=2))

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        """Read a saved model."""
        data = json.loads(path.read_text())
        data.pop("features", None)
        return cls(**data)


def _matrix(rows: list[SessionRow]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([[r.features[f] for f in FEATURES] for r in rows]), np.array([r.purchased for r in rows])


def train_intent(rows: list[SessionRow], holdout: float = 0.2) -> IntentModel:
    """Fit on the older sessions, report AUC on the newest ``holdout`` share against the views baseline."""
    ordered = sorted(rows, key=lambda r: r.start)
    cut = int(len(ordered) * (1 - holdout))
    x_tr, y_tr = _matrix(ordered[:cut])
    x_te, y_te = _matrix(ordered[cut:])
    if len(set(y_tr)) < 2:
        raise ValueError("purchase intent needs sessions with and without purchases")
    mean, scale = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-9
    clf = LogisticRegression(max_iter=1000).fit((x_tr - mean) / scale, y_tr)
    p_tr = clf.predict_proba((x_tr - mean) / scale)[:, 1]
    threshold = _best_f1_threshold(p_tr, y_tr)
    metrics: dict[str, Any] = {"train_sessions": int(cut), "heldout_sessions": len(y_te),
                               "purchase_rate": round(float(np.mean(y_te)), 4) if len(y_te) else None}  # fmt: skip
    if len(set(y_te)) == 2:
        p_te = clf.predict_proba((x_te - mean) / scale)[:, 1]
        metrics["auc"] = round(float(roc_auc_score(y_te, p_te)), 4)
        metrics["auc_baseline_views"] = round(float(roc_auc_score(y_te, x_te[:, FEATURES.index("log_views")])), 4)
    return IntentModel(mean.tolist(), scale.tolist(), clf.coef_[0].tolist(), float(clf.intercept_[0]), threshold,
                       metrics)  # fmt: skip


def _best_f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for t in np.linspace(0.05, 0.95, 91):
        pred = p >= t
        tp = float(np.sum(pred & (y == 1)))
        f1 = 2 * tp / max(1.0, float(np.sum(pred)) + float(np.sum(y == 1)))
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return round(best, 2)


def current_session_features(events: list[Event], now: datetime) -> dict[str, float] | None:
    """Features of the customer's session in progress (its last event within 30 minutes), if any."""
    sessions = split_sessions(events)
    if not sessions or now - sessions[-1][-1].ts > SESSION_GAP:
        return None
    current = sessions[-1]
    cut = next((j for j, e in enumerate(current) if e.kind in STOP_KINDS), len(current))
    return features(current[:cut], sessions[:-1]) if cut else None
