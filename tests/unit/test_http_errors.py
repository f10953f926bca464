"""The shared bad-input helpers: the validation-error handler, the JSON depth scan, the body depth limit."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from core import http_errors
from core.asgi import BodyLimit
from core.http_errors import UnicodeStr, json_too_deep, safe_errors, safe_text, valid_unicode


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


@pytest.mark.parametrize(
    ("text", "limit", "deep"),
    [
        (_nested(32), 32, False),
        (_nested(33), 32, True),
        ('{"a": ' * 33 + "1" + "}" * 33, 32, True),
        ("[" * 40, 32, True),  # unterminated still counts
        ("[]" * 5000, 32, False),  # many brackets, never deep
        ('["' + "[" * 100 + '"]', 32, False),  # brackets in a string do not count
        (r'["\"' + "[" * 100 + '"]', 32, False),  # nor after an escaped quote
        ('/faq_feedback{"a": ' + _nested(5000) + "}", 32, True),
        ('"unterminated [[[[' + "[" * 100, 32, False),  # a string that never ends holds its brackets
        ("", 32, False),
    ],
)
def test_json_depth_is_measured_without_parsing(text: str, limit: int, deep: bool) -> None:
    assert json_too_deep(text, limit) is deep
    assert json_too_deep(text.encode(), limit) is deep


def test_the_depth_scan_is_linear_on_hostile_input() -> None:
    started = time.perf_counter()
    for hostile in ['"' + '\\"' * 500_000, '"\\' * 500_000, "[" * 1_000_000, '"a' * 500_000]:
        json_too_deep(hostile)
    assert time.perf_counter() - started < 5  # quadratic backtracking would take minutes


def test_lone_surrogates_are_not_valid_unicode_and_are_made_safe() -> None:
    assert valid_unicode("naïve ☕") and not valid_unicode("a\ud800b")
    assert safe_text("a\ud800b") == "a\\ud800b" and safe_text("x" * 1000, 10) == "x" * 10
    assert json_too_deep("/x{" + "[" * 40 + "\ud800") is True  # surrogates do not break the scan


def test_safe_errors_keep_loc_msg_type_and_drop_the_input() -> None:
    errors = [
        {"type": "string_type", "loc": ("body", "text"), "msg": "Input should be a valid string", "input": float("inf"),
         "ctx": {"x": float("nan")}},
        {"type": "string_unicode", "loc": ("body", "a\ud800"), "msg": "bad \ud800", "input": "a\ud800b"},
        {"type": "missing", "loc": ("body", "texts", 0), "msg": "m" * 1000},
        "not even a mapping",
    ]  # fmt: skip
    safe = safe_errors(errors)
    assert [set(e) for e in safe] == [{"loc", "msg", "type"}] * 4
    assert safe[0] == {"loc": ["body", "text"], "msg": "Input should be a valid string", "type": "string_type"}
    assert safe[1]["loc"] == ["body", "a\\ud800"] and safe[1]["msg"] == "a\\ud800 is not valid Unicode"
    assert safe[2]["loc"] == ["body", "texts", 0] and len(safe[2]["msg"]) == http_errors.MAX_MSG_CHARS
    json.dumps(safe, allow_nan=False).encode("utf-8")  # always serialisable
    assert len(safe_errors([{"type": "x"}] * 100)) == http_errors.MAX_ERRORS


class _Body(BaseModel):
    text: UnicodeStr
    number: float = 0.0


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    def echo(body: _Body) -> dict[str, Any]:
        return {"text": body.text}

    http_errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=100_000, max_json_depth=32, depth_exempt=("/exempt/",))
    return app


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (b'{"text": 1e400}', "Input should be a valid string"),
        (b'{"text": "a\\ud800b"}', "text is not valid Unicode"),
        (b'{"text": "ok", "number": "a\\ud800b"}', "number is not valid Unicode"),  # pydantic: string_unicode
        (b'{"text": ', "JSON decode error"),
    ],
)
def test_the_handler_answers_422_without_the_input(body: bytes, msg: str, caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(_app())
    with caplog.at_level(logging.INFO, logger="core.http_errors"):
        r = client.post("/echo", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert any(d["msg"] == msg for d in detail) and all(set(d) == {"loc", "msg", "type"} for d in detail)
    assert "inf" not in r.text.lower() and "ud800" not in r.text
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    assert "/echo" in logged and "1e400" not in logged and "ud800" not in logged and "ok" not in logged


def test_the_body_limit_refuses_deep_json_but_not_forms_or_exempt_paths() -> None:
    client = TestClient(_app())
    deep = '{"text": ' + _nested(5000) + "}"
    for content_type in ["application/json", "application/vnd.api+json", None]:
        headers = {"content-type": content_type} if content_type else {}
        r = client.post("/echo", content=deep, headers=headers)
        assert r.status_code == 422 and r.json() == {"detail": "the JSON body nests deeper than 32 levels"}
    assert client.post("/echo", content=deep, headers={"content-type": "text/plain"}).status_code == 422  # pydantic
    r = client.post("/exempt/x", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 404  # reached the app
    ok = '{"text": "' + "[" * 100 + '"}'  # brackets in a string are text
    assert client.post("/echo", content=ok, headers={"content-type": "application/json"}).status_code == 200
