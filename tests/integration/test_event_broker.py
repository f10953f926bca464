"""The production input of the monitor: Rasa publishes to RabbitMQ (its pika broker), the worker consumes.

Runs against the real RabbitMQ on 127.0.0.1:5672 (guest/guest), with its own stack and queue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from sqlmodel import Session, select

from core.db import make_engine
from core.models import Checkpoint, Turn
from monitoring.ingest import CHECKPOINT
from tests.integration.conftest import Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.fixture(scope="module")
def broker_stack(
    quick_nlu_model: Path, quick_rec_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    try:
        pika.BlockingConnection(pika.URLParameters(BROKER + "?connection_attempts=1&socket_timeout=3")).close()
    except pika.exceptions.AMQPError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    queue = f"storebot-it-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'app.db'}"
    yield from running_stack(url, quick_nlu_model, quick_rec_model, tmp_path_factory,
                             event_broker_url=BROKER, event_broker_queue=queue)  # fmt: skip
    conn = pika.BlockingConnection(pika.URLParameters(BROKER))
    conn.channel().queue_delete(queue)
    conn.close()


def test_turns_reach_the_monitor_through_rabbitmq(broker_stack: Stack) -> None:
    sender = f"broker-{uuid.uuid4().hex[:6]}"
    for text in ["hello", "where is my order 100234?", "this is terrible, my card payment failed"]:
        assert broker_stack.say(sender, text)
    engine = make_engine(broker_stack.settings.app_db_url)
    deadline = time.monotonic() + 60
    turns: list[Turn] = []
    while time.monotonic() < deadline and len(turns) < 3:
        with Session(engine) as s:
            turns = list(s.exec(select(Turn).where(Turn.sender_id == sender)))
        time.sleep(0.5)
    with Session(engine) as s:
        polled = s.get(Checkpoint, CHECKPOINT)
    engine.dispose()
    assert len(turns) == 3
    assert all(t.message_id and t.tracker_event_id is None for t in turns)  # from the queue, not the tracker store
    assert polled is None  # the tracker store was never polled
    assert {t.sentiment for t in turns} <= {"negative", "neutral", "positive"} and turns[-1].intent
