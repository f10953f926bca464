"""Fuzzing every HTTP endpoint from its OpenAPI schema (schemathesis + hypothesis): no input makes a server error.

The gateway runs with the fake Rasa and a real SQLite database; chat calls carry a valid session
token, console calls an admin's cookie and CSRF token (so the fuzz reaches the handlers, not only
the sign-in check). The NLU service runs a tiny real model.

Besides the generated requests, every JSON endpoint of both schemas gets the inputs a generator
does not make (security review): a number out of float range (``1e400``), a lone surrogate, and
JSON nested 5,000 deep, in each field, in a list, in a payload string and as the whole body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from bot.channels import auth
from bot.channels.app import create_app
from bot.channels.conversations import ChatService
from bot.channels.rasa_client import RasaClient
from core.db import make_engine, upgrade
from core.settings import Settings
from nlu.predict import load_predictor
from nlu.server import create_app as create_nlu_app
from tests.unit.rasa_fake import FakeRasa

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
STATE: dict[str, Any] = {}


@pytest.fixture(scope="module")
def gateway_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    var = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{var / 'app.db'}"
    upgrade(url)
    engine = make_engine(url)
    conf = Settings(_env_file=None, var_dir=var, database_url=url, rate_ip_per_minute=0,  # type: ignore[call-arg]
                    rate_sessions_per_minute=0, rate_login_per_minute=0)  # fmt: skip
    service = ChatService(engine=engine, rasa=RasaClient("http://rasa", transport=FakeRasa(engine).transport()))
    app = create_app(conf, service)
    STATE["app"] = app
    auth.create_user(engine, "root", "root-password-1", "admin")
    client = TestClient(app)
    STATE["chat"] = client.post("/api/chat/sessions", json={}).json()["token"]
    client.post("/api/chat/messages", json={"text": "agent"}, headers={"Authorization": f"Bearer {STATE['chat']}"})
    form = client.get("/console/login")
    login_csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    client.post("/console/login", data={"username": "root", "password": "root-password-1", "csrf_token": login_csrf})
    STATE["cookies"] = dict(client.cookies)
    STATE["csrf"] = re.search(r'data-csrf="([^"]+)"', client.get("/console").text).group(1)  # type: ignore[union-attr]
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    engine.dispose()


def fuzz(schema: Any, check: Any) -> list[str]:
    """Run ``check`` on generated cases of every operation of ``schema``; returns the operations' labels."""
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @given(case=operation.as_strategy())
        @FUZZ
        def run(case: Any) -> None:
            check(case)

        run()
    return labels


def gateway_case(case: Any) -> None:
    """One generated gateway request: no server error, and API refusals carry a message."""
    if isinstance(case.query, dict) and isinstance(case.query.get("wait"), int | float):
        case.query["wait"] = min(case.query["wait"], 0.2)  # long polls would only make the fuzz slow
    if case.path.startswith("/api/chat/messages"):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {STATE['chat']}"}
    if isinstance(case.body, dict) and "csrf_token" in case.body and case.path != "/console/login":
        case.body["csrf_token"] = STATE["csrf"]
    response = case.call(cookies=STATE["cookies"] if case.path.startswith("/console") else None)
    case.validate_response(response, checks=[not_a_server_error])
    if case.path.startswith(("/api/", "/console/api/")) and 400 <= response.status_code < 500:
        assert response.json().get("detail"), response.text  # every refusal says why


def test_gateway_endpoints_never_fail_on_any_input(gateway_schema: Any) -> None:
    labels = fuzz(gateway_schema, gateway_case)
    assert "POST /api/chat/messages" in labels and "POST /console/handoffs/{handoff_id}/reply" in labels


def test_nlu_endpoints_never_fail_on_any_input(tiny_model_dir: Path) -> None:
    app = create_nlu_app(lambda: load_predictor(tiny_model_dir, 1, "torch"))
    with TestClient(app):  # runs the start-up that loads the model

        def nlu_case(case: Any) -> None:
            case.validate_response(case.call(), checks=[not_a_server_error])

        labels = fuzz(schemathesis.openapi.from_asgi("/openapi.json", app), nlu_case)
    assert "POST /model/parse" in labels


DEEP = "[" * 5000 + "]" * 5000
HOSTILE = {  # raw JSON texts
    "1e400": "1e400",
    "-1e400": "-1e400",
    "lone surrogate": '"a\\ud800b"',
    "lone low surrogate": '"\\udfff"',
    "deep JSON": DEEP,
    "deep object": '{"a": ' * 5000 + "1" + "}" * 5000,
    "deep payload": json.dumps('/faq_feedback{"a": ' + DEEP + "}"),
    "payload at the length limit": json.dumps('/faq_feedback{"a": ' + "[" * 990 + "]" * 990 + "}"),
}


def json_operations(openapi: dict[str, Any]) -> dict[str, list[str]]:
    """``"METHOD /path"`` → the body's field names, for every operation whose body is JSON."""
    found = {}
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            content = (op.get("requestBody") or {}).get("content") or {}
            if "application/json" not in content:
                continue
            schema = content["application/json"]["schema"]
            if "$ref" in schema:
                schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            found[f"{method.upper()} {path}"] = sorted(schema.get("properties") or {})
    return found


def hostile_bodies(fields: list[str]) -> Iterator[tuple[str, str]]:
    """(what, raw body): each hostile value alone, in each field, in a list in each field, as the whole body."""
    for what, raw in HOSTILE.items():
        yield f"body is {what}", raw
        yield f"list of {what}", f"[{raw}]"
        for field in fields:
            others = ", ".join(f'"{f}": "ok"' for f in fields if f != field)
            yield f"{field} is {what}", "{" + f'"{field}": {raw}' + (f", {others}" if others else "") + "}"
            yield f"{field} holds {what}", "{" + f'"{field}": [{raw}]' + "}"


def assert_refused_with_a_reason(client: TestClient, operation: str, headers: dict[str, str]) -> None:
    """Every hostile body on ``operation``: no 5xx, and the 4xx is JSON with a ``detail``."""
    method, path = operation.split(" ", 1)
    for what, body in hostile_bodies(json_operations(client.get("/openapi.json").json())[operation]):
        r = client.request(method, path, content=body.encode("utf-8"),
                           headers={**headers, "content-type": "application/json"})  # fmt: skip
        assert r.status_code < 500, (operation, what, r.text[:300])
        if r.status_code >= 400:
            assert r.json().get("detail"), (operation, what, r.text[:300])
            assert "ud800" not in r.text.lower() and "udfff" not in r.text.lower()  # never echoed back


def test_gateway_json_endpoints_refuse_hostile_json(gateway_schema: Any) -> None:
    client = TestClient(STATE["app"], raise_server_exceptions=False)
    operations = json_operations(client.get("/openapi.json").json())
    assert {"POST /api/chat/messages", "POST /api/chat/sessions"} <= set(operations)
    for operation in operations:
        assert_refused_with_a_reason(client, operation, {"Authorization": f"Bearer {STATE['chat']}"})


def test_nlu_json_endpoints_refuse_hostile_json(tiny_model_dir: Path) -> None:
    app = create_nlu_app(lambda: load_predictor(tiny_model_dir, 1, "torch"))
    with TestClient(app, raise_server_exceptions=False) as client:
        operations = json_operations(client.get("/openapi.json").json())
        assert set(operations) == {"POST /model/parse", "POST /model/parse/batch"}
        for operation in operations:
            assert_refused_with_a_reason(client, operation, {})
