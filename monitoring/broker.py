"""Rasa's event broker as the monitor's input: user events from RabbitMQ (Rasa's ``pika`` broker).

Rasa publishes every tracker event as JSON (with ``sender_id``) to a durable queue. Each round,
:meth:`BrokerInput.drain` takes up to ``batch`` messages, stores the user turns in the ``turn``
table and commits, and only then acknowledges them: a crash before the commit leaves them in the
queue (redelivered), a crash after it redelivers turns whose ``message_id`` is already stored
(skipped). So every turn is counted once. Other events are acknowledged and dropped; a message
that is not an event at all is logged and dropped (it would otherwise come back forever).

A broker that disappears is logged and reconnected to on a later round; what Rasa published
meanwhile waits in the durable queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.models import Turn
from monitoring.ingest import turn_from_event, unseen

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached (retried on the next round)."""


class BrokerInput:
    """A consumer of Rasa's event queue that keeps its connection between rounds."""

    def __init__(self, url: str, queue: str, engine: Engine, batch: int = 1000) -> None:
        self.url, self.queue, self.engine, self.batch = url, queue, engine, batch
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self.dropped = 0

    def _open(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        try:
            params = pika.URLParameters(self.url)
            params.connection_attempts, params.socket_timeout, params.blocked_connection_timeout = 1, 5, 30
            self._connection = pika.BlockingConnection(params)
            channel = self._connection.channel()
            channel.queue_declare(self.queue, durable=True)  # as Rasa declares it; the first of us creates it
        except (AMQPError, OSError, ValueError) as exc:  # pika raises ValueError for a socket reset mid-handshake
            self.close()
            raise BrokerUnavailable(f"RabbitMQ at {pika.URLParameters(self.url).host}: {exc!r}") from exc
        self._channel = channel
        return channel

    def drain(self) -> int:
        """Store the user turns of up to ``batch`` queued events; returns how many new turns."""
        channel = self._open()
        try:
            got: list[tuple[int, bytes]] = []
            while len(got) < self.batch:
                method, _, body = channel.basic_get(self.queue, auto_ack=False)
                if method is None:
                    break
                got.append((method.delivery_tag, body))
            if not got:
                return 0
            try:
                stored = self._store([body for _, body in got])  # commits before the acknowledgement below
            except Exception:  # the database failed: hand the batch back to the queue for the next round
                with contextlib.suppress(AMQPError, OSError):
                    channel.basic_nack(got[-1][0], multiple=True, requeue=True)
                raise
            channel.basic_ack(got[-1][0], multiple=True)
            return stored
        except (AMQPError, OSError) as exc:  # unacknowledged messages go back to the queue
            self.close()
            raise BrokerUnavailable(f"RabbitMQ connection lost: {exc!r}") from exc

    def _store(self, bodies: list[bytes]) -> int:
        turns: list[Turn] = []
        for body in bodies:
            event = _event(body)
            if event is None:
                self.dropped += 1
                continue
            if event.get("event") != "user":
                continue
            turn = turn_from_event(None, str(event.get("sender_id") or ""), event.get("timestamp"), event)
            if not turn.message_id or not turn.sender_id:
                self.dropped += 1
                log.warning("broker: a user event without sender_id or message_id was dropped")
                continue
            turns.append(turn)
        if not turns:
            return 0
        with Session(self.engine) as s:
            new = unseen(s, turns)
            s.add_all(new)
            s.commit()
        return len(new)

    def close(self) -> None:
        """Close the connection (a later :meth:`drain` reconnects)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(AMQPError, OSError):
                connection.close()


def _event(body: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("broker: a message that is not JSON was dropped (%d bytes)", len(body))
        return None
    if not isinstance(event, dict):
        log.warning("broker: a message that is not an event object was dropped")
        return None
    return event
