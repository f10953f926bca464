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
from core.pii import BadPattern, Finding, RedactingFilter, Redactor, build_redactor, normalise
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


def test_worst_case_input_for_the_new_shapes_stays_fast() -> None:
    texts = ["1." * 1000, "1 - " * 500, "de12" * 500, "a at " * 400, "x" + " dot x" * 333, "Via Roma " * 222,
             "12 rue de la " * 166, "Hauptstraße " * 166, "Aa" * 1000, "[at] " * 400, "4111 " * 400,
             "\u200b1" * 1000, "75002 Paris " * 166, "12.05.2024 " * 181, "a.b at c " * 222]  # fmt: skip
    started = time.perf_counter()
    for text in texts:
        Redactor().redact(text)
        Redactor().redact_continuation(text, text)
    assert time.perf_counter() - started < 2.0


def test_a_long_message_is_masked_quickly() -> None:
    prose = ("Hello, I ordered running shoes (size 42, blue) on 12 May, order #100234, and they have not arrived. "
             "I paid 89.99 by card and would like a refund, or to know when they come. Thanks! ") * 12  # fmt: skip
    redactor = Redactor()
    started = time.perf_counter()
    for _ in range(100):
        redactor.redact(prose[:2000])
    assert time.perf_counter() - started < 1.0  # about 0.4 ms each on a laptop


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("４１１１ ｊａｎｅ", "4111 jane"),  # full-width digits and letters
        ("a\u00a0b\u2007c\u202fd\u3000e\u1680f", "a b c d e f"),  # Unicode spaces
        ("4\u200b1\u200c1\u200d1\u200e2", "41112"),  # zero-width characters between digits
        ("soft\u00adhyphen, word\u2060joiner, \ufeffBOM", "softhyphen, wordjoiner, BOM"),
        ("ﬁne, 𝐛𝐨𝐥𝐝 and 𝟒𝟐", "fine, bold and 42"),  # ligatures, mathematical letters and digits
        ("e\u0301 and e\u2060\u0301", "é and é"),  # composed, also once the joiner is gone
    ],
)
def test_normalisation(text: str, want: str) -> None:
    assert normalise(text) == want


@pytest.mark.parametrize(
    "text",
    [
        "café crème, naïve, Ελληνικά, русский, 日本語のテキスト",
        "👨\u200d👩\u200d👧 👍🏽 🏳️\u200d🌈",  # emoji sequences keep their joiners
        "می\u200cخواهم and क्\u200dष",  # so do Persian and Devanagari
        "line one\nline two\ttab",
        "order ٤٥٦ and price ४२",  # other digits are matched as digits but kept as typed
        "a 2 m² rug at ½ price… ㅋㅋㅋ ™",  # what full NFKC would rewrite
    ],
)
def test_normalisation_keeps_ordinary_text(text: str) -> None:
    assert normalise(text) == text
    assert Redactor().redact(text) == text


def test_findings_are_placed_in_the_normalised_text() -> None:
    text = "card\u00a04111\u200b1111 1111 1111 ok"
    [finding] = Redactor().findings(text)
    assert finding == Finding("card", 5, 23)
    assert normalise(text)[finding.start : finding.end] == "41111111 1111 1111"


@pytest.mark.parametrize(
    ("previous", "text", "want"),
    [
        ("my card is [card]", "1111 1111", "[card]"),  # the first half was masked as a fragment
        ("my card is 4111 1111", "1111 1111 thanks", "[card] thanks"),  # raw previous text is masked first
        ("my card is 4111", "1111 1111 1111", "[card]"),  # 4 + 12 digits
        ("card: 4111 1111 -", "1111-1111 exp 12/27", "[card] exp 12/27"),
        ("my card is [card].", "123", "[card]"),  # the security code after a card
        ("", "4111 1111 1111 1111", "[card]"),  # no previous message: as redact
        ("hello", "1111 1111", "1111 1111"),  # nothing card-like before
        ("order 100234", "1111 1111", "1111 1111"),
        ("I paid 4500", "200 more", "200 more"),  # 4 + 3 digits are no card
        ("my card is [card]", "100 euros were taken twice", "100 euros were taken twice"),  # a quantity
        ("my card is [card]", "2024-05-12 is the date", "2024-05-12 is the date"),  # a date
        ("my card is [card]", "2 more questions", "2 more questions"),  # too few digits
        ("my card is [card]", "thanks, 1111 1111", "thanks, 1111 1111"),  # not at the start
    ],
)
def test_a_card_split_over_two_messages(previous: str, text: str, want: str) -> None:
    assert Redactor().redact_continuation(previous, text) == want


def test_the_continuation_needs_the_card_kind() -> None:
    assert build_redactor("email").redact_continuation("my card is 4111 1111", "1111 1111") == "1111 1111"
    assert build_redactor("").redact_continuation("[card]", "1111 1111") == "1111 1111"  # off


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


_SEPARATORS = st.sampled_from([" ", "-", ".", " - ", "\u200b", "\u00a0", "\u2009", "\u2013", ""])


@settings(max_examples=300, deadline=None)
@given(before=st.text(alphabet=st.characters(categories=["L"]) | st.sampled_from(" ,.!?"), max_size=30),
       after=st.text(alphabet=st.characters(categories=["L"]) | st.sampled_from(" ,.!?"), max_size=30),
       digits=st.from_regex(r"4[0-9]{15}", fullmatch=True), seps=st.lists(_SEPARATORS, min_size=3, max_size=3),
       full_width=st.booleans())  # fmt: skip
def test_any_card_with_any_separators_is_masked(
    before: str, after: str, digits: str, seps: list[str], full_width: bool
) -> None:
    if full_width:
        digits = "".join(chr(ord(d) - ord("0") + ord("０")) for d in digits)
    card = digits[:4] + seps[0] + digits[4:8] + seps[1] + digits[8:12] + seps[2] + digits[12:]
    masked = Redactor().redact(f"{before} {card} {after}")
    assert not any(c.isdigit() for c in masked), masked


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalisation_is_idempotent(text: str) -> None:
    assert normalise(normalise(text)) == normalise(text)


_PIECES = st.sampled_from(
    [*"0123456789 -+()./@[],", "a", "e", "X", " at ", " dot ", "(at)", "[dot]", "\u200b", "\u200d", "\u00a0",
     "\u0301", "４", "٤", "–", "rue ", "Via ", "Roma ", "straße ", "75002 ", "Paris", "de89", "gb82west", "[card]",
     "4111 ", "2024-", "\ufeff", "\u00ad", "ㅋ", "²", "–", "ｊ"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join), st.lists(_PIECES, max_size=20).map("".join))
def test_redaction_of_the_new_shapes_is_idempotent(text: str, previous: str) -> None:
    redactor = Redactor()
    once = redactor.redact(text)
    assert redactor.redact(once) == once
    after = redactor.redact_continuation(previous, text)
    assert redactor.redact_continuation(previous, after) == after
