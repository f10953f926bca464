"""PII redaction: the corpus, the shop's own patterns, bad configuration, logs, and the gateway's entry point."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from bot.channels.app import create_app
from bot.channels.conversations import ChatService
from bot.channels.rasa_client import RasaClient
from core.db import get_engine
from core.models import ChatMessage
from core.pii import BadPattern, RedactingFilter, Redactor, build_redactor
from tests.unit.rasa_fake import FakeRasa

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "pii_corpus.yml").read_text())


@pytest.mark.parametrize(("text", "want"), CORPUS["caught"])
def test_caught(text: str, want: str) -> None:
    assert Redactor().redact(text) == want


@pytest.mark.parametrize("text", CORPUS["kept"])
def test_kept(text: str) -> None:
    assert Redactor().redact(text) == text


@pytest.mark.parametrize("text", CORPUS["missed"])
def test_known_misses_are_documented_truthfully(text: str) -> None:
    assert Redactor().redact(text) == text


def test_configured_kinds_and_the_shops_own_patterns() -> None:
    r = build_redactor("email", '{"member": "M-\\\\d{6}", "zip": "\\\\b\\\\d{5}\\\\b"}')
    assert r.redact("a@b.io, M-123456, 90210, +44 20 7946 0958") == "[email], [member], [zip], +44 20 7946 0958"
    assert build_redactor("").redact("a@b.io") == "a@b.io"  # off


@pytest.mark.parametrize(
    ("kinds", "patterns", "message"),
    [
        ("email,fingerprint", "", "unknown PII kind 'fingerprint'"),
        ("email", "[1, 2]", "JSON object"),
        ("email", "{not json", "JSON object"),
        ("email", '{"bad": "("}', "'bad' is not a valid regular expression"),
        ("email", '{"Bad Name": "x"}', "lower-case letters"),
    ],
)
def test_bad_configuration_is_named(kinds: str, patterns: str, message: str) -> None:
    with pytest.raises(BadPattern, match=message):
        build_redactor(kinds, patterns)


def test_worst_case_input_stays_fast() -> None:
    started = time.perf_counter()
    for text in ["1 " * 1000, "a" * 2000, "1-" * 1000, "12 Abc " * 285, "x@" * 1000]:
        Redactor().redact(text)
    assert time.perf_counter() - started < 2.0


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.pii")
    masker = RedactingFilter(Redactor())
    caplog.handler.addFilter(masker)
    try:
        logger.warning("customer %s wrote from %s", "jane@example.com", "+44 20 7946 0958")
    finally:
        caplog.handler.removeFilter(masker)
    assert caplog.messages == ["customer [email] wrote from [phone]"]


def test_the_gateway_masks_before_storing_and_relaying(app_settings) -> None:  # type: ignore[no-untyped-def]
    engine = get_engine()
    fake = FakeRasa(engine)
    service = ChatService(engine=engine, rasa=RasaClient("http://rasa", transport=fake.transport()))
    client = TestClient(create_app(app_settings, service))
    token = client.post("/api/chat/sessions", json={}).json()["token"]
    r = client.post(
        "/api/chat/messages",
        json={"text": "I'm jane@example.com, card 4111 1111 1111 1111, order 100234"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    masked = "I'm [email], card [card], order 100234"
    assert r.json()["messages"][0]["text"] == masked
    assert [text for _, text, _ in fake.received] == [masked]
    with Session(engine) as s:
        stored = s.exec(select(ChatMessage.text).where(ChatMessage.role == "customer")).all()
    assert stored == [masked]


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=60), after=st.text(max_size=60),
       user=st.from_regex(r"[a-z][a-z0-9._+-]{0,20}", fullmatch=True),
       domain=st.from_regex(r"[a-z0-9-]{1,15}\.[a-z]{2,6}", fullmatch=True))  # fmt: skip
def test_any_email_in_any_text_is_masked(before: str, after: str, user: str, domain: str) -> None:
    email = f"{user}@{domain}"
    masked = Redactor().redact(f"{before} {email} {after}")
    assert email not in masked


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 -+()./abcXYZ@[]"), max_size=80) | st.text(max_size=80))
def test_redaction_is_idempotent(text: str) -> None:
    once = Redactor().redact(text)
    assert Redactor().redact(once) == once
