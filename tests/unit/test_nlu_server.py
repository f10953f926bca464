"""The NLU HTTP service: Rasa's contract and bad input."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlu.errors import ModelNotFoundError
from nlu.predict import load_predictor
from nlu.server import create_app


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    app = create_app(lambda: load_predictor(tiny_model_dir), token="s3cret")
    with TestClient(app) as c:
        yield c


def test_parse_in_rasa_contract(client: TestClient) -> None:
    r = client.post("/model/parse", json={"text": "where is 100234", "message_id": "user-1", "token": "s3cret"})
    assert r.status_code == 200
    body = r.json()
    assert body["text"] == "where is 100234"
    assert {"intent", "intent_ranking", "entities", "sentiment"} <= set(body)
    assert {"entity": "order_id", "value": "100234", "start": 9, "end": 15}.items() <= next(
        e for e in body["entities"] if e["entity"] == "order_id" and e["extractor"] == "RegexRules"
    ).items()


def test_token_in_query_string(client: TestClient) -> None:
    assert client.post("/model/parse?token=s3cret", json={"text": "hi"}).status_code == 200


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_missing_or_wrong_token(client: TestClient, token: str | None) -> None:
    r = client.post("/model/parse", json={"text": "hi", "token": token})
    assert r.status_code == 401 and "token" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"text": "  ", "token": "s3cret"}', 422),
        (b'{"text": ', 422),
        (b'{"token": "s3cret"}', 422),
        (b'{"text": "\xff\xfe", "token": "s3cret"}', 400),
        (b'{"text": "' + b"a" * 100_000 + b'", "token": "s3cret"}', 422),
    ],
)
def test_bad_bodies_are_4xx(client: TestClient, body: bytes, status: int) -> None:
    r = client.post("/model/parse", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status


def test_oversize_body_rejected_early(client: TestClient) -> None:
    r = client.post("/model/parse", content=b"x" * 3_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_batch(client: TestClient) -> None:
    r = client.post("/model/parse/batch", json={"texts": ["hi", "", "/greet"], "token": "s3cret"})
    results = r.json()["results"]
    assert results[0]["intent"]["name"] and results[1] is None and results[2]["intent"]["name"] == "greet"
    assert client.post("/model/parse/batch", json={"texts": [], "token": "s3cret"}).status_code == 422


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    text = client.get("/metrics").text
    assert "nlu_requests_total" in text and "nlu_parse_seconds" in text


def test_unavailable_model_gives_503() -> None:
    def fail():  # type: ignore[no-untyped-def]
        raise ModelNotFoundError("no model")

    with TestClient(create_app(fail)) as c:
        assert c.get("/health").status_code == 503
        r = c.post("/model/parse", json={"text": "hi"})
        assert r.status_code == 503 and "no model" in r.json()["detail"]
