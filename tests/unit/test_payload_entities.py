"""Button payloads and regex entities."""

from nlu.entities import extract
from nlu.payload import parse_payload


def test_payload_with_entities() -> None:
    got = parse_payload('/track_order{"order_id": "100234"}')
    assert got == {
        "intent": "track_order",
        "confidence": 1.0,
        "entities": [{"entity": "order_id", "value": "100234", "start": 0, "end": 0}],
    }


def test_payload_plain_and_list_values() -> None:
    assert parse_payload("/greet")["intent"] == "greet"  # type: ignore[index]
    got = parse_payload('/inform{"size": ["M", "L"]}')
    assert [e["value"] for e in got["entities"]] == ["M", "L"]  # type: ignore[index]


def test_malformed_payloads_are_free_text() -> None:
    assert parse_payload("/greet{not json}") is None
    assert parse_payload('/greet{"a": {"nested": 1}}') is None
    assert parse_payload("hello /greet") is None
    assert parse_payload("/") is None


def test_order_id_and_email_entities() -> None:
    text = "order #100234 for jane@example.com, invoice INV-2093"
    ents = {e["entity"]: e for e in extract(text)}
    assert ents["order_id"]["value"] == "100234"
    assert text[ents["order_id"]["start"] : ents["order_id"]["end"]] == "100234"
    assert ents["email"]["value"] == "jane@example.com"
    assert ents["invoice_id"]["value"] == "INV-2093"


def test_invoice_and_phone_numbers_are_not_order_ids() -> None:
    assert extract("I need my bill #12588") == []
    assert extract("download invoice number 00108 please") == []
    assert extract("call me on phone 5550100") == []
    assert [e["value"] for e in extract("order 100234 and bill 100235")] == ["100234"]


def test_no_entities_in_prices_or_short_numbers() -> None:
    assert extract("it costs 12.50 and I have 3 items") == []
    assert [e["value"] for e in extract("my order is 4587345.")] == ["4587345"]
