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


@pytest.mark.parametrize(
    ("path", "body", "msg"),
    [
        ("/model/parse", b'{"text": 1e400, "token": "s3cret"}', "Input should be a valid string"),
        ("/model/parse", b'{"text": "hi", "message_id": -1e400, "token": "s3cret"}', "Input should be a valid string"),
        ("/model/parse", b'{"text": "a\\ud800b", "token": "s3cret"}', "text is not valid Unicode"),
        ("/model/parse", b'{"text": "hi", "token": "\\udfff"}', "token is not valid Unicode"),
        ("/model/parse/batch", b'{"texts": ["ok", 1e400], "token": "s3cret"}', "Input should be a valid string"),
        ("/model/parse/batch", b'{"texts": ["a\\ud800b"], "token": "s3cret"}', "texts is not valid Unicode"),
    ],
)
def test_out_of_range_numbers_and_lone_surrogates_are_422(client: TestClient, path: str, body: bytes, msg: str) -> None:
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert msg in [d["msg"] for d in detail] and all(set(d) == {"loc", "msg", "type"} for d in detail)
    assert "inf" not in r.text.lower() and "ud800" not in r.text.lower()  # the input is not echoed


@pytest.mark.parametrize("depth", [33, 990, 5000])  # 990: the deepest a gateway payload (2000 characters) can be
def test_a_payload_nested_too_deep_is_422_not_a_recursion_error(client: TestClient, depth: int) -> None:
    text = '/faq_feedback{"a": ' + "[" * depth + "]" * depth + "}"
    r = client.post("/model/parse", json={"text": text, "token": "s3cret"})
    assert r.status_code == 422 and r.json()["detail"][0]["msg"] == "the payload's JSON nests deeper than 32 levels"
    r = client.post("/model/parse/batch", json={"texts": ["hi", text], "token": "s3cret"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "texts", 1]
    shallow = '/greet{"a": ' + "[" * 31 + "]" * 31 + "}"  # 32 levels: parsed (nested lists are no entities)
    assert client.post("/model/parse", json={"text": shallow, "token": "s3cret"}).status_code == 200
    free_text = "[" * 40 + " is not a payload"  # only a payload's JSON is parsed
    assert client.post("/model/parse", json={"text": free_text, "token": "s3cret"}).status_code == 200


def test_a_json_body_nested_too_deep_is_422(client: TestClient) -> None:
    body = '{"text": ' + "[" * 5000 + "]" * 5000 + ', "token": "s3cret"}'
    r = client.post("/model/parse", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json() == {"detail": "the JSON body nests deeper than 32 levels"}
