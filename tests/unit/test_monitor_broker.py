"""The monitor's input from Rasa's event broker, against the real RabbitMQ on 127.0.0.1:5672.

Once each: redeliveries and duplicates are stored once; a database failure hands the batch back
to the queue; a lost connection is reopened on the next drain.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from core.db import make_engine
from core.errors import ConfigError
from core.models import Turn
from core.rasa_files import event_broker_config
from monitoring.broker import BrokerInput, BrokerUnavailable
from monitoring.metrics import WorkerMetrics
from monitoring.worker import BrokerTurns
from tests.unit.test_ingest import _insert, _tracker

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def _rabbit() -> pika.BlockingConnection:
    try:
        return pika.BlockingConnection(pika.URLParameters(URL + "?connection_attempts=1&socket_timeout=3"))
    except pika.exceptions.AMQPError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")


@pytest.fixture()
def queue() -> Iterator[str]:
    name = f"storebot-test-{uuid.uuid4().hex[:8]}"
    yield name
    conn = _rabbit()
    conn.channel().queue_delete(name)
    conn.close()


def _publish(queue: str, *bodies: bytes) -> None:
    conn = _rabbit()
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    for body in bodies:
        ch.basic_publish("", queue, body)
    conn.close()


def _user(text: str, message_id: str, sentiment: str = "negative") -> bytes:
    """A user event as Rasa's pika broker publishes it (the event's dict plus sender_id)."""
    parse = {"intent": {"name": "payment_issue", "confidence": 0.9}, "entities": [], "text": text,
             "sentiment": {"label": sentiment, "score": 0.9}}  # fmt: skip
    return json.dumps({"sender_id": "cust-1", "event": "user", "timestamp": 1_764_400_000.5, "text": text,
                       "parse_data": parse, "input_channel": "rest", "message_id": message_id}).encode()  # fmt: skip


def _waiting(queue: str) -> int:
    conn = _rabbit()
    n = conn.channel().queue_declare(queue, durable=True, passive=True).method.message_count
    conn.close()
    return n


def test_user_turns_are_stored_once_and_the_rest_is_acknowledged(sqlite_url: str, queue: str) -> None:
    engine = make_engine(sqlite_url)
    bot = json.dumps({"sender_id": "cust-1", "event": "bot", "text": "hi"}).encode()
    _publish(queue, _user("my card failed", "m1"), bot, b"not json", b"[1, 2]", _user("my card failed", "m1"),
             _user("still broken", "m2"), json.dumps({"event": "user", "text": "no ids"}).encode())  # fmt: skip
    broker = BrokerInput(URL, queue, engine, batch=3)
    assert broker.drain() == 1 and broker.drain() == 1 and broker.drain() == 0  # m1 (and its duplicate), m2
    assert broker.drain() == 0 and _waiting(queue) == 0 and broker.dropped == 3
    with Session(engine) as s:
        turns = list(s.exec(select(Turn).order_by(Turn.id)))  # type: ignore[arg-type]
    assert [(t.message_id, t.sender_id, t.sentiment, t.intent, t.channel) for t in turns] == [
        ("m1", "cust-1", "negative", "payment_issue", "rest"),
        ("m2", "cust-1", "negative", "payment_issue", "rest"),
    ]
    assert turns[0].tracker_event_id is None and turns[0].timestamp.timestamp() == 1_764_400_000.5
    broker.close()


def test_a_database_failure_hands_the_batch_back(tmp_path, sqlite_url: str, queue: str) -> None:  # type: ignore[no-untyped-def]
    _publish(queue, _user("a", "x1"), _user("b", "x2"))
    broken = BrokerInput(URL, queue, make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}"))
    with pytest.raises(SQLAlchemyError):
        broken.drain()
    broken.close()
    assert _waiting(queue) == 2  # nothing lost
    assert BrokerInput(URL, queue, make_engine(sqlite_url)).drain() == 2


def test_a_lost_connection_is_reopened_and_a_missing_broker_is_reported(sqlite_url: str, queue: str) -> None:
    broker = BrokerInput(URL, queue, make_engine(sqlite_url))
    _publish(queue, _user("a", "y1"))
    assert broker.drain() == 1
    assert broker._connection is not None
    broker._connection.close()  # the broker went away (a restart) behind the consumer's back
    _publish(queue, _user("b", "y2"))
    assert broker.drain() == 1  # reconnected
    nowhere = BrokerInput("amqp://guest:guest@127.0.0.1:1/%2F", queue, make_engine(sqlite_url))
    with pytest.raises(BrokerUnavailable, match=r"RabbitMQ at 127\.0\.0\.1"):
        nowhere.drain()


def test_a_broker_that_resets_connections_is_reported_and_then_reopened(sqlite_url: str, queue: str) -> None:
    from benchmarks.tcp_proxy import TcpProxy

    proxy = TcpProxy(5672)
    try:
        broker = BrokerInput(f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F", queue, make_engine(sqlite_url))
        _publish(queue, _user("a", "z1"))
        assert broker.drain() == 1
        proxy.down()  # connections reset, new ones accepted and reset at once (pika: ValueError, not AMQPError)
        for _ in range(3):
            with pytest.raises(BrokerUnavailable):
                broker.drain()
        proxy.up()
        _publish(queue, _user("b", "z2"))
        assert broker.drain() == 1
    finally:
        proxy.close()


def test_turns_rasa_could_not_publish_are_reconciled_from_the_tracker_store(
    tmp_path: Path, sqlite_url: str, queue: str
) -> None:
    tracker, app = _tracker(tmp_path), make_engine(sqlite_url)  # its events are stamped 1_700_000_000
    for i, mid in enumerate(["r1", "r2"], start=1):  # r1 published and in the tracker store; r2 only stored
        _insert(tracker, i, "user", _user("turn", mid).decode())
    _publish(queue, _user("turn", "r1"))
    now, wall = [0.0], [1_700_000_005.0]
    metrics = WorkerMetrics()
    source = BrokerTurns(BrokerInput(URL, queue, app), tracker, app, reconcile_s=30, metrics=metrics,
                         clock=lambda: now[0], wall_clock=lambda: wall[0])  # fmt: skip
    assert source() == 1 and source.reconciled == 0  # r1 from the queue; r2 may still be on its way (5 s old)
    now[0], wall[0] = 31.0, 1_700_000_036.0
    assert source() == 1 and source.reconciled == 1  # r2, from the tracker store
    _insert(tracker, 3, "user", _user("turn", "r3").decode())
    _publish(queue, _user("turn", "r3"))
    assert source() == 1 and source.reconciled == 1  # from the queue; the tracker store is not due yet
    _insert(tracker, 4, "user", _user("turn", "r4").decode())  # published during a broker outage: lost by Rasa
    now[0] = 62.0
    assert source() == 1 and source.reconciled == 2  # r3 is in the tracker store too, stored once
    source.broker.url = "amqp://guest:guest@127.0.0.1:1/%2F"  # the broker goes away
    source.broker.close()
    _insert(tracker, 5, "user", _user("turn", "r5").decode())
    now[0] = 93.0
    with pytest.raises(BrokerUnavailable):
        source()  # reported, but the tracker store was read all the same
    assert source.reconciled == 3 and metrics.reconciled._value.get() == 3 and metrics.ingested._value.get() == 1
    with Session(app) as s:
        assert sorted(str(t.message_id) for t in s.exec(select(Turn))) == ["r1", "r2", "r3", "r4", "r5"]


def test_rasa_endpoint_config_from_the_url() -> None:
    cfg = event_broker_config("amqp://bot:s%40cret@mq.internal:5673/", "events")
    assert cfg == {"type": "pika", "url": "mq.internal", "port": 5673, "username": "bot", "password": "s@cret",
                   "queues": ["events"]}  # fmt: skip
    with pytest.raises(ConfigError, match="amqp://"):
        event_broker_config("http://mq.internal", "events")
