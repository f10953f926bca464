"""The customer's web chat: the page, and the JSON API its widget uses.

- ``POST /api/chat/sessions`` → a new conversation and its secret token (kept by the page in
  localStorage, so a reload continues the conversation);
- ``POST /api/chat/messages`` (``Authorization: Bearer <token>``) → the turn's new messages;
- ``GET /api/chat/messages?after=N&wait=S`` → messages after id N, waiting up to S seconds
  for new ones (long polling: agent replies arrive this way; a dropped connection is simply
  polled again with the last id seen, so nothing is missed or shown twice).

A token reaches only its own conversation; there is no conversation id in any URL.
"""

# No `from __future__ import annotations`: FastAPI resolves these routes' local Annotated aliases at runtime.
import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.channels.conversations import ChatService, message_public
from bot.channels.errors import NotAuthenticated
from core.handoff import active_handoff, queue_position
from core.http_errors import PayloadStr, UnicodeStr
from core.models import Conversation

STATIC = Path(__file__).parent / "static"
MAX_ID = 2**63 - 1  # database ids are 64-bit
# The last message id a client has seen (a larger number is not an id, and the database could not compare it).
AfterParam = Annotated[int, Query(ge=0, le=MAX_ID, description="return messages after this id")]
MAX_WAIT = 25.0
POLL_INTERVAL = 0.3


class SessionIn(BaseModel):
    """A new chat: optionally who the shop says the customer is (signed unless in demo mode)."""

    customer_id: UnicodeStr | None = Field(default=None, max_length=64)
    signature: UnicodeStr | None = Field(default=None, max_length=128)


class MessageIn(BaseModel):
    """A customer message: typed text, or a button's title and payload.

    Both must be valid Unicode, and a payload (``/intent{...}``; typed text that starts with ``/``
    is checked the same way) may nest its JSON at most 32 levels deep: Rasa and the NLU service
    parse that JSON recursively (RecursionError near 1,000 levels, which 2,000 characters reach).
    """

    text: PayloadStr = Field(default="", max_length=2000)
    payload: PayloadStr | None = Field(default=None, max_length=2000)


class Typing:
    """Who is typing where, for a few seconds (agents' typing indicator; per gateway process)."""

    def __init__(self, ttl: float = 6.0) -> None:
        """``ttl``: seconds a typing signal lasts."""
        self.ttl = ttl
        self._until: dict[str, float] = {}

    def mark(self, conversation_id: str) -> None:
        """Someone is typing in the conversation now."""
        self._until[conversation_id] = time.monotonic() + self.ttl

    def clear(self, conversation_id: str) -> None:
        """They sent their message."""
        self._until.pop(conversation_id, None)

    def active(self, conversation_id: str) -> bool:
        """Whether the indicator should show."""
        return self._until.get(conversation_id, 0.0) > time.monotonic()


def router(service: ChatService, typing: Typing) -> APIRouter:
    """The web chat's routes, bound to a chat service."""
    api = APIRouter()

    def conversation(authorization: Annotated[str | None, Header()] = None) -> Conversation:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            raise NotAuthenticated("send the chat token as 'Authorization: Bearer <token>'")
        return service.by_token(token.strip())

    Conv = Annotated[Conversation, Depends(conversation)]

    @api.get("/chat", include_in_schema=False)
    def chat_page() -> FileResponse:
        return FileResponse(STATIC / "chat.html", headers={"Cache-Control": "no-cache"})

    @api.post("/api/chat/sessions", status_code=201)
    def new_session(body: SessionIn) -> dict[str, Any]:
        conv, token = service.start_web(body.customer_id, body.signature)
        return {"token": token, "conversation_id": conv.id}

    @api.post("/api/chat/messages")
    def send(body: MessageIn, conv: Conv) -> dict[str, Any]:
        new = service.customer_says(conv, body.text, body.payload)
        return {"messages": [message_public(m) for m in new], **status(conv)}

    @api.get("/api/chat/messages")
    async def receive(
        conv: Conv, request: Request, after: AfterParam = 0,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + wait
        while True:
            new = await anyio.to_thread.run_sync(service.messages, conv.id, after)
            if new or time.monotonic() >= deadline or await request.is_disconnected():
                break
            await asyncio.sleep(POLL_INTERVAL)
        info = await anyio.to_thread.run_sync(status, conv)
        return {"messages": [message_public(m) for m in new], **info}

    def status(conv: Conversation) -> dict[str, Any]:
        with Session(service.engine) as s:
            handoff = active_handoff(s, conv.id)
            position = queue_position(s, handoff) if handoff and handoff.state == "queued" else None
        state = None if handoff is None else {"state": handoff.state, "position": position, "agent": handoff.agent}
        return {"handoff": state, "agent_typing": typing.active(conv.id)}

    return api
