"""Staff accounts of the console: scrypt password hashes, server-side sessions, CSRF tokens, roles.

A session cookie holds a random token; the database keeps only its sha256, the user and a CSRF
token that every state-changing form must echo (``hmac.compare_digest``). Roles:

- ``agent``: the queue, claim, reply, release, resolve and hand back their own handoffs;
- ``risk``: read conversations (intents, sentiment) but not act in them;
- ``admin``: everything, including acting on another agent's handoff.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from bot.channels.errors import BadMessage, Forbidden, NotAuthenticated
from core.models import StaffSession, StaffUser, utcnow

ROLES = ("agent", "risk", "admin")
CAN_ACT = {"agent", "admin"}  # roles that may claim, reply and close
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against :func:`hash_password`'s output."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(want, got)


@dataclass(frozen=True)
class Staff:
    """The signed-in person as a request sees them."""

    user_id: int
    username: str
    role: str
    csrf_token: str

    @property
    def can_act(self) -> bool:
        """Agents and admins take and answer handoffs; risk reads."""
        return self.role in CAN_ACT

    @property
    def is_admin(self) -> bool:
        """Admins may act on handoffs claimed by someone else."""
        return self.role == "admin"


def create_user(engine: Engine, username: str, password: str, role: str, slack_user_id: str | None = None) -> StaffUser:
    """Add a staff account (clear errors for a bad role, a short password or a taken name)."""
    if role not in ROLES:
        raise BadMessage(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 100 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise BadMessage("username: 1-100 letters, digits, . _ -")
    if len(password) < MIN_PASSWORD:
        raise BadMessage(f"password: at least {MIN_PASSWORD} characters")
    with Session(engine) as s:
        if s.exec(select(StaffUser).where(StaffUser.username == username)).first():
            raise BadMessage(f"user {username} already exists")
        user = StaffUser(username=username, password_hash=hash_password(password), role=role,
                         slack_user_id=slack_user_id or None)  # fmt: skip
        s.add(user)
        s.commit()
        s.refresh(user)
        return user


def set_password(engine: Engine, username: str, password: str) -> None:
    """Change a password and sign the user out everywhere."""
    if len(password) < MIN_PASSWORD:
        raise BadMessage(f"password: at least {MIN_PASSWORD} characters")
    with Session(engine) as s:
        user = s.exec(select(StaffUser).where(StaffUser.username == username)).first()
        if user is None:
            raise BadMessage(f"no user {username}")
        user.password_hash = hash_password(password)
        s.add(user)
        s.exec(delete(StaffSession).where(col(StaffSession.user_id) == user.id))  # type: ignore[call-overload]
        s.commit()


@dataclass(frozen=True)
class Lockout:
    """Per-account sign-in back-off: after ``failures`` wrong passwords in a row the account refuses sign-ins
    for ``seconds``, doubled with each further failure, at most ``max_seconds``."""

    failures: int = 5
    seconds: float = 30.0
    max_seconds: float = 3600.0

    def duration(self, failed: int) -> float:
        """Seconds an account with ``failed`` failures in a row stays locked (0 below the threshold)."""
        if failed < self.failures or self.seconds <= 0:
            return 0.0
        return min(self.max_seconds, self.seconds * 2 ** min(failed - self.failures, 20))


DEFAULT_LOCKOUT = Lockout()


def login(
    engine: Engine, username: str, password: str, *, hours: float, lockout: Lockout = DEFAULT_LOCKOUT
) -> tuple[str, Staff]:
    """Check the password and open a session; returns the cookie token. One message for every wrong password.

    A locked account (see :class:`Lockout`) is refused without checking the password, so guessing cannot
    go on from any number of addresses; a successful sign-in clears its failures.
    """
    with Session(engine) as s:
        user = s.exec(select(StaffUser).where(StaffUser.username == username)).first()
        now = utcnow()
        if user is not None and user.locked_until is not None and _aware(user.locked_until) > now:
            wait = math.ceil((_aware(user.locked_until) - now).total_seconds())
            raise NotAuthenticated(f"too many wrong passwords for this account; try again in {wait} s")
        stored = user.password_hash if user else _dummy_hash()  # same work whether or not the user exists
        ok = verify_password(password, stored) and user is not None and user.active
        if user is not None and not ok:
            user.failed_logins += 1
            locked_for = lockout.duration(user.failed_logins)
            user.locked_until = now + timedelta(seconds=locked_for) if locked_for else None
            s.add(user)
            s.commit()
        if not ok or user is None or user.id is None:
            raise NotAuthenticated("wrong username or password")
        user.failed_logins, user.locked_until = 0, None
        s.add(user)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        s.add(StaffSession(id=token_digest(token), user_id=user.id, csrf_token=csrf,
                           expires_at=utcnow() + timedelta(hours=hours)))  # fmt: skip
        s.exec(delete(StaffSession).where(col(StaffSession.expires_at) < utcnow()))  # type: ignore[call-overload]
        s.commit()
        return token, Staff(user_id=user.id, username=user.username, role=user.role, csrf_token=csrf)


def session_staff(engine: Engine, token: str | None) -> Staff:
    """The staff member of a session cookie, or :class:`NotAuthenticated`."""
    if not token:
        raise NotAuthenticated("not signed in")
    with Session(engine) as s:
        row = s.get(StaffSession, token_digest(token))
        if row is None or _aware(row.expires_at) < utcnow():
            raise NotAuthenticated("session expired; sign in again")
        user = s.get(StaffUser, row.user_id)
        if user is None or not user.active or user.id is None:
            raise NotAuthenticated("account disabled")
        return Staff(user_id=user.id, username=user.username, role=user.role, csrf_token=row.csrf_token)


def logout(engine: Engine, token: str | None) -> None:
    """End a session (unknown tokens are ignored)."""
    if token:
        with Session(engine) as s:
            s.exec(delete(StaffSession).where(col(StaffSession.id) == token_digest(token)))  # type: ignore[call-overload]
            s.commit()


def check_csrf(staff: Staff, sent: str | None) -> None:
    """A state-changing request must carry the session's CSRF token."""
    if not sent or not hmac.compare_digest(staff.csrf_token.encode(), sent.encode()):
        raise Forbidden("missing or wrong CSRF token; reload the page")


def staff_by_slack_id(engine: Engine, slack_user_id: str) -> StaffUser | None:
    """The staff account linked to a Slack user (Slack buttons and thread replies act as it)."""
    with Session(engine) as s:
        return s.exec(
            select(StaffUser).where(StaffUser.slack_user_id == slack_user_id, col(StaffUser.active).is_(True))
        ).first()


def token_digest(token: str) -> str:
    """The sha256 (hex) under which a secret token is stored: console sessions, web chat tokens."""
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)  # SQLite returns naive UTC


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))
