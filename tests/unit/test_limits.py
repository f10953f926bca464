"""Abuse limits: token buckets, oversize bodies, and 429s per address, per customer, for sessions and sign-ins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.channels.app import build_service, create_app
from bot.channels.limits import Rate, RateLimiter
from bot.channels.rasa_client import RasaClient
from core.db import get_engine
from core.models import ChatMessage
from tests.unit.rasa_fake import FakeRasa


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_at_the_rate_and_caps_at_the_burst() -> None:
    clock = Clock()
    limiter, rate = RateLimiter(clock=clock), Rate(per_minute=60, burst=3)
    assert [limiter.wait_needed("k", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_needed("k", rate) == pytest.approx(1.0)
    assert limiter.wait_needed("other", rate) == 0.0  # keys are independent
    clock.now += 1.0
    assert limiter.wait_needed("k", rate) == 0.0
    clock.now += 3600  # a long pause refills to the burst, not beyond
    assert [limiter.wait_needed("k", rate) for _ in range(4)][-1] > 0
    assert limiter.wait_needed("k", Rate(0, 0)) == 0.0  # unlimited


def test_the_limiter_forgets_the_least_recently_used_keys() -> None:
    limiter = RateLimiter(max_keys=2)
    for key in "abc":
        limiter.wait_needed(key, Rate(60, 1))
    assert limiter.wait_needed("a", Rate(60, 1)) == 0.0  # "a" was dropped, so it starts full again
    assert limiter.wait_needed("c", Rate(60, 1)) > 0


def _client(app_settings, monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[TestClient, FakeRasa]:  # type: ignore[no-untyped-def]
    from core import settings

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings.get_settings.cache_clear()
    conf = settings.get_settings()
    fake = FakeRasa(get_engine())
    service = build_service(conf, RasaClient("http://rasa", transport=fake.transport()))
    return TestClient(create_app(conf, service)), fake


def test_oversize_bodies_are_refused_before_reading(app_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, fake = _client(app_settings, monkeypatch, MAX_BODY_BYTES="1000")
    token = client.post("/api/chat/sessions", json={}).json()["token"]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    r = client.post("/api/chat/messages", content=b'{"text": "' + b"a" * 2000 + b'"}', headers=auth)
    assert r.status_code == 413 and "larger than 1000 bytes" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"text": "'
        for _ in range(20):
            yield b"b" * 100
        yield b'"}'

    r = client.post("/api/chat/messages", content=chunks(), headers=auth)
    assert r.status_code == 413
    assert fake.received == []
    ok = client.post("/api/chat/messages", json={"text": "hello"}, headers=auth)
    assert ok.status_code == 200  # the limit does not touch normal messages


def test_a_customer_sending_too_fast_gets_429_and_nothing_half_done(app_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client, fake = _client(app_settings, monkeypatch, RATE_CUSTOMER_PER_MINUTE="6", RATE_CUSTOMER_BURST="2")
    token = client.post("/api/chat/sessions", json={}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    codes = [client.post("/api/chat/messages", json={"text": f"hi {i}"}, headers=auth) for i in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].headers["Retry-After"] == "10" and "too many messages" in codes[2].json()["detail"]
    with Session(get_engine()) as s:
        stored = s.exec(select(ChatMessage.text).where(ChatMessage.role == "customer")).all()
    assert stored == ["hi 0", "hi 1"] and len(fake.received) == 2
    other = client.post("/api/chat/sessions", json={}).json()["token"]  # another customer is not affected
    assert client.post(
        "/api/chat/messages", json={"text": "hey"}, headers={"Authorization": f"Bearer {other}"}
    ).is_success


def test_per_address_limits_on_requests_sessions_and_sign_ins(app_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # refill rates near zero: on a loaded machine the requests are slow enough for the defaults to refill the buckets
    slow = {"RATE_SESSIONS_PER_MINUTE": "0.01", "RATE_LOGIN_PER_MINUTE": "0.01", "RATE_IP_PER_MINUTE": "0.01"}
    client, _ = _client(
        app_settings, monkeypatch, RATE_SESSIONS_BURST="3", RATE_LOGIN_BURST="2", RATE_IP_BURST="40", **slow
    )
    assert [client.post("/api/chat/sessions", json={}).status_code for _ in range(4)] == [201, 201, 201, 429]
    form = {"username": "x", "password": "y", "csrf_token": "z"}
    first = [client.post("/console/login", data=form, follow_redirects=False) for _ in range(3)]
    assert "expired" in first[0].headers["location"] and "too%20many%20sign-in" in first[2].headers["location"]
    assert client.get("/health").status_code == 200
    codes = [client.get("/chat").status_code for _ in range(40)]
    assert codes.count(429) > 0 and client.get("/health").status_code == 200  # health is never limited


def _serve(app, options: dict) -> Iterator[str]:  # type: ignore[no-untyped-def,type-arg]
    """Run ``app`` in a real uvicorn server (what `bot.channels serve` runs) on a free port; yields its URL."""
    import threading
    import time

    import uvicorn

    from core.stack import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, **{**options, "port": port}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_a_forged_x_forwarded_for_does_not_lift_the_limits(app_settings, monkeypatch, trusted: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 3: uvicorn believed X-Forwarded-For from 127.0.0.1, so each new value was a new address."""
    import httpx

    from bot.channels.__main__ import server_options

    client, _ = _client(app_settings, monkeypatch, RATE_SESSIONS_PER_MINUTE="0.001", RATE_SESSIONS_BURST="2",
                        TRUSTED_PROXIES=trusted)  # fmt: skip
    from core import settings

    for url in _serve(client.app, server_options(settings.get_settings(), 0)):
        codes = [httpx.post(f"{url}/api/chat/sessions", json={}, headers={"X-Forwarded-For": f"203.0.113.{i}"},
                            timeout=10).status_code for i in range(4)]  # fmt: skip
    # no trusted proxy: every request is the same client (the peer); a trusted one: each address is its own
    assert codes == ([201, 201, 429, 429] if not trusted else [201, 201, 201, 201])


def test_sign_in_lockout_backs_off_per_account(app_settings) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 3: wrong passwords from any number of addresses lock the account for a while."""
    from datetime import timedelta

    from bot.channels import auth
    from bot.channels.errors import NotAuthenticated
    from core.models import StaffUser, utcnow

    engine = get_engine()
    auth.create_user(engine, "sam", "correct horse battery", "agent")
    lockout = auth.Lockout(failures=3, seconds=30)
    assert [lockout.duration(n) for n in (2, 3, 4, 5, 40)] == [0, 30, 60, 120, 3600]
    for _ in range(3):
        with pytest.raises(NotAuthenticated, match="wrong username or password"):
            auth.login(engine, "sam", "guess", hours=1, lockout=lockout)
    with pytest.raises(NotAuthenticated, match="try again in 30 s"):  # even the right password, while locked
        auth.login(engine, "sam", "correct horse battery", hours=1, lockout=lockout)
    with Session(engine) as s:
        user = s.exec(select(StaffUser).where(StaffUser.username == "sam")).one()
        assert user.failed_logins == 3
        user.locked_until = utcnow() - timedelta(seconds=1)  # the lock has run out
        s.add(user)
        s.commit()
    with pytest.raises(NotAuthenticated, match="wrong username or password"):
        auth.login(engine, "sam", "guess again", hours=1, lockout=lockout)  # a 4th failure: locked for 60 s
    with pytest.raises(NotAuthenticated, match="try again in 60 s"):
        auth.login(engine, "sam", "correct horse battery", hours=1, lockout=lockout)
    with Session(engine) as s:
        user = s.exec(select(StaffUser).where(StaffUser.username == "sam")).one()
        user.locked_until = None
        s.add(user)
        s.commit()
    auth.login(engine, "sam", "correct horse battery", hours=1, lockout=lockout)
    with Session(engine) as s:
        assert s.exec(select(StaffUser).where(StaffUser.username == "sam")).one().failed_logins == 0
