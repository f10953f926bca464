"""The whole path: Rasa REST → our NLU → rules/forms → our action server → database."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from core.db import make_engine
from core.models import FaqFeedback, Handoff, HandoffTransition, Turn
from core.stack import start, wait_healthy
from tests.integration.conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DBS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


def _turns(stack: Stack, sender: str, n: int, timeout: float = 20) -> list[Turn]:
    """Wait until the worker has copied ``n`` turns of ``sender`` into the turn table."""
    engine = make_engine(stack.settings.app_db_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with Session(engine) as s:
                turns = list(s.exec(select(Turn).where(Turn.sender_id == sender).order_by(Turn.tracker_event_id)))
            if len(turns) >= n or time.monotonic() > deadline:
                return turns
            time.sleep(0.5)
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", DBS, indirect=True)
def test_multi_turn_conversation_is_answered_and_stored(stack: Stack) -> None:
    sender = f"it-{uuid.uuid4().hex[:8]}"
    assert "store assistant" in stack.texts(sender, "hello")
    reply = stack.texts(sender, "where is my order 100234?")
    assert "email address" in reply and "100234" in reply and "UPS" not in reply  # whose order is it?
    reply = stack.texts(sender, "ana@example.com")
    assert "100234" in reply and "on its way with UPS" in reply
    assert "What's your order number?" in stack.texts(sender, "can you track my order")
    assert "postcode" in stack.texts(sender, "it's 100235")
    assert "was delivered" in stack.texts(sender, "SW1A 1AA")
    signed_in = {"customer_id": "c-ana", "customer_verified": True}  # the shop signed Ana's web session
    assert "was delivered" in "\n".join(m.get("text", "") for m in stack.say(sender, "and order 100235?", signed_in))
    reply = stack.texts(sender, "I want to talk to a human agent")
    assert "request #" in reply and "queue" in reply

    turns = _turns(stack, sender, 8)
    assert [t.intent for t in turns][:2] == ["greet", "track_order"] and turns[3].intent == "track_order"
    assert turns[-1].intent == "contact_human_agent"
    assert all(t.sentiment in {"negative", "neutral", "positive"} and t.confidence for t in turns)
    assert '"order_id"' in turns[1].entities and turns[1].channel == "rest"
    engine = make_engine(stack.settings.app_db_url)
    with Session(engine) as s:
        handoff = s.exec(select(Handoff).where(Handoff.conversation_id == sender)).one()
    engine.dispose()
    assert handoff.state == "queued" and handoff.reason == "explicit_request"


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_bad_input_gets_a_polite_reply_and_is_kept(stack: Stack) -> None:
    sender = f"bad-{uuid.uuid4().hex[:8]}"
    huge = "x" * 100_000
    for message in ["   ", huge, "\x00\x1b[31m", "🙂" * 10, "/track_order{broken"]:
        replies = stack.say(sender, message)
        assert replies and all(r.get("text") for r in replies), message[:20]
    assert httpx.post(stack.rasa_webhook, content=b"{not json", headers=stack.rasa_auth, timeout=30).status_code >= 400
    assert "store assistant" in stack.texts(sender, "hi")  # still alive
    turns = _turns(stack, sender, 6)
    assert any(len(t.text) == 10_000 for t in turns)  # the 100 kB message is stored (truncated copy)


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_nlu_down_gives_fallback_then_recovers(stack: Stack) -> None:
    sender = f"down-{uuid.uuid4().hex[:8]}"
    nlu = stack.services["nlu"]
    assert nlu.proc is not None
    nlu.proc.terminate()
    nlu.proc.wait(timeout=20)
    assert "rephrase" in stack.texts(sender, "hello")
    start(nlu, stack.settings)
    wait_healthy(nlu, 120)
    assert "store assistant" in stack.texts(sender, "hello")


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_nlu_rejects_a_wrong_token(stack: Stack) -> None:
    url = stack.settings.url(stack.settings.nlu_port) + "/model/parse"
    assert httpx.post(url, json={"text": "hi", "token": "wrong"}, timeout=10).status_code == 401
    ok = httpx.post(url, json={"text": "hi", "token": "integration-token", "message_id": "x"}, timeout=10)
    assert ok.status_code == 200 and ok.json()["text"] == "hi"


@pytest.mark.parametrize("database_url", DBS, indirect=True)
def test_faq_answer_feedback_next_candidate_then_a_person(stack: Stack) -> None:
    sender = f"faq-{uuid.uuid4().hex[:8]}"
    first = stack.say(sender, "what is your return policy?")
    assert "within 30 days" in first[0]["text"] and "From our FAQ" in first[0]["text"]
    assert [b["title"] for b in first[0]["buttons"]] == ["👍 That helped", "👎 That didn't help"]
    second = stack.texts(sender, '/faq_feedback{"helpful":"no"}')
    assert second.startswith("Sorry about that. Maybe this helps:")
    third = stack.texts(sender, '/faq_feedback{"helpful":"no"}')
    assert "get a colleague" in third and "request #" in third
    other = f"faq2-{uuid.uuid4().hex[:8]}"
    assert "Gift wrap" in stack.texts(other, "is gift wrapping available?")
    assert "Glad" in stack.texts(other, '/faq_feedback{"helpful":"yes"}')
    assert "don't know" in stack.texts(other, "who won the football world cup in 1954")
    engine = make_engine(stack.settings.app_db_url)
    with Session(engine) as s:
        handoff = s.exec(select(Handoff).where(Handoff.conversation_id == sender)).one()
        votes = s.exec(select(FaqFeedback).where(FaqFeedback.sender_id.in_([sender, other]))).all()  # type: ignore[attr-defined]
    engine.dispose()
    assert handoff.reason == "faq_not_helpful"
    assert sorted(v.helpful for v in votes) == [False, False, True]


def _ask(stack: Stack, sender: str, text: str, customer: str) -> list[dict]:  # type: ignore[type-arg]
    return stack.say(sender, text, {"customer_id": customer})


def _texts(replies: list[dict]) -> str:  # type: ignore[type-arg]
    return "\n".join(m.get("text", "") for m in replies)


def _cards(replies: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """Rasa's REST channel sends a card as two messages: text with buttons, then the product_card payload."""
    return [
        {"custom": m["custom"], "text": replies[i - 1].get("text", ""), "buttons": replies[i - 1].get("buttons", [])}
        for i, m in enumerate(replies)
        if (m.get("custom") or {}).get("type") == "product_card" and i > 0
    ]


@pytest.mark.parametrize("database_url", DBS, indirect=True)
def test_recommendation_cards_clicks_and_dismissals(stack: Stack) -> None:
    from core.models import BehaviourEvent, RecImpression

    one, two = f"rec-{uuid.uuid4().hex[:8]}", f"rec-{uuid.uuid4().hex[:8]}"
    cards = _cards(_ask(stack, one, "anything for me?", "cust0001"))
    other = _cards(_ask(stack, two, "anything for me?", "cust0002"))
    assert len(cards) == 3 and len(other) == 3
    assert [c["custom"]["product_id"] for c in cards] != [c["custom"]["product_id"] for c in other]
    assert all(c["custom"]["reason"] and c["text"].count("$") == 1 for c in cards)
    first, second = cards[0], cards[1]
    buttons = {b["title"]: b["payload"] for b in first["buttons"]}
    assert set(buttons) == {"More like this", "Not interested", "Add to cart"}
    assert "Added to your cart" in "\n".join(
        m.get("text", "") for m in _ask(stack, one, buttons["Add to cart"], "cust0001")
    )
    dismiss = {b["title"]: b["payload"] for b in second["buttons"]}["Not interested"]
    assert "won't suggest" in "\n".join(m.get("text", "") for m in _ask(stack, one, dismiss, "cust0001"))
    more = _cards(_ask(stack, one, buttons["More like this"], "cust0001"))
    assert more and all(c["custom"]["reason"].startswith("Similar to") for c in more)
    again = _cards(_ask(stack, one, "what would you recommend?", "cust0001"))
    assert second["custom"]["product_id"] not in {c["custom"]["product_id"] for c in again}
    cheap = _cards(_ask(stack, one, "show me kitchen stuff under $30", "cust0001"))
    assert cheap and all(c["custom"]["price"] <= 30 and c["custom"]["category"].startswith("Kitchen") for c in cheap)

    engine = make_engine(stack.settings.app_db_url)
    with Session(engine) as s:
        shown = s.exec(select(RecImpression).where(RecImpression.customer_id == "cust0001")).all()
        events = s.exec(select(BehaviourEvent).where(BehaviourEvent.source == "chat")).all()
    engine.dispose()
    assert len(shown) >= 3 + len(more) + len(again) and {i.position for i in shown} >= {1, 2, 3}
    kinds = {(e.customer_id, e.product_id, e.kind) for e in events}
    pid = first["custom"]["product_id"]
    assert {("cust0001", pid, "rec_click"), ("cust0001", pid, "cart")} <= kinds
    assert ("cust0001", second["custom"]["product_id"], "rec_dismiss") in kinds
    assert all(e.session_id for e in events)  # each click carries the request id of its impression


class Console:
    """A signed-in staff member talking to the console over HTTP (cookies, CSRF) like a browser form."""

    def __init__(self, stack: Stack, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=stack.gateway, timeout=60)
        form = self.http.get("/console/login").text
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        r = self.http.post("/console/login", data={"username": username, "password": password, "csrf_token": token})
        assert r.status_code == 303, r.text
        self.csrf = self.http.get("/console").text.split('data-csrf="')[1].split('"')[0]

    def act(self, handoff_id: int, action: str, **form: str) -> httpx.Response:
        return self.http.post(f"/console/handoffs/{handoff_id}/{action}", data={"csrf_token": self.csrf, **form})


@pytest.mark.parametrize("database_url", DBS, indirect=True)
def test_handoff_to_a_person_and_back_through_the_gateway(stack: Stack) -> None:
    web = httpx.Client(base_url=stack.gateway, timeout=60)
    session = web.post("/api/chat/sessions", json={"customer_id": "cust0003"}).json()
    token, conversation_id = session["token"], session["conversation_id"]
    me = {"Authorization": f"Bearer {token}"}

    def say(text: str, payload: str | None = None) -> list[dict]:  # type: ignore[type-arg]
        r = web.post("/api/chat/messages", json={"text": text, "payload": payload}, headers=me)
        assert r.status_code == 200, r.text
        return r.json()["messages"]

    assert "store assistant" in say("hello")[-1]["text"]
    queued = say("I want to talk to a human agent")
    assert "request #" in queued[-1]["text"] and queued[-1]["data"]["buttons"][0]["payload"] == "/handoff_cancel"
    assert [m["role"] for m in say("hello? anyone there?")] == ["customer"]  # the bot is paused
    engine = make_engine(stack.settings.app_db_url)
    with Session(engine) as s:
        handoff = s.exec(select(Handoff).where(Handoff.conversation_id == conversation_id)).one()
    assert handoff.id is not None and handoff.channel == "web" and handoff.announced_at is not None
    admin = Console(stack, "admin", stack.admin_password)
    assert admin.act(handoff.id, "resolve").status_code == 409  # unclaimed
    assert admin.act(handoff.id, "claim").status_code == 303
    assert admin.act(handoff.id, "reply", text="Hi, this is Sam from support. How can I help?").status_code == 303
    view = admin.http.get(f"/console/api/conversations/{handoff.conversation_id}").json()
    customer_lines = [m for m in view["messages"] if m["role"] == "customer"]
    assert customer_lines[-1]["intent"] and customer_lines[-1]["sentiment"] in {"negative", "neutral", "positive"}
    assert admin.act(handoff.id, "resolve").status_code == 303
    seen = web.get("/api/chat/messages", params={"after": 0}, headers=me).json()
    texts = [m["text"] for m in seen["messages"]]
    assert "Hi, this is Sam from support. How can I help?" in texts and "How happy are you" in texts[-1]
    assert "Thank you for the rating" in say("5", payload='/csat{"rating":"5"}')[-1]["text"]
    assert "nothing to rate" in say("1", payload='/csat{"rating":"1"}')[-1]["text"]  # once per handoff
    assert "100234" in say("where is my order 100234?")[-1]["text"]  # the bot is back
    from core.models import CsatRating

    with Session(engine) as s:
        rating = s.exec(select(CsatRating).where(CsatRating.conversation_id == handoff.conversation_id)).one()
        steps = [
            t.to_state for t in s.exec(select(HandoffTransition).where(HandoffTransition.handoff_id == handoff.id))
        ]
    engine.dispose()
    assert (rating.rating, rating.handoff_id) == (5, handoff.id) and steps == ["queued", "claimed", "resolved"]


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_one_turn_request_returns_replies_and_parse_and_holds_back_for_an_angry_customer(stack: Stack) -> None:
    """The gateway's single call per message (bot/rasa_launch.py ``/webhooks/rest/turn``) on the real Rasa."""
    url = stack.settings.url(stack.settings.rasa_port) + "/webhooks/rest/turn"

    def turn(sender: str, text: str, hold: float | None) -> dict:  # type: ignore[type-arg]
        body: dict[str, object] = {"sender": sender, "message": text, "metadata": {}, "hold_if_negative": hold}
        r = httpx.post(url, json=body, headers=stack.rasa_auth, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    calm, angry = f"turn-calm-{uuid.uuid4().hex[:6]}", f"turn-angry-{uuid.uuid4().hex[:6]}"
    got = turn(calm, "hello", 0.0)
    assert got["held"] is False and got["messages"] and got["parse"]["intent"]["name"] == "greet"
    assert got["parse"]["sentiment"]["label"] in {"neutral", "positive"}
    got = turn(angry, ANGRY[0], 0.0)  # negative at any confidence: held
    assert got["held"] is True and got["messages"] == [] and got["parse"]["sentiment"]["label"] == "negative"
    tracker = httpx.get(
        stack.settings.url(stack.settings.rasa_port) + f"/conversations/{angry}/tracker",
        params={"token": stack.settings.rasa_token},
        timeout=30,
    ).json()
    assert tracker["paused"] is True and tracker["latest_message"]["text"] == ANGRY[0]  # recorded, not answered
    assert turn(angry, "hello?", None)["messages"] == []  # still paused until a person hands back
    assert httpx.post(url, json={"sender": calm, "message": "hi"}, timeout=30).status_code == 401
    bad = httpx.post(url, json={"sender": 7, "message": "hi"}, headers=stack.rasa_auth, timeout=30)
    assert bad.status_code == 400 and "sender and message" in bad.text


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_customers_see_only_what_is_theirs_through_the_gateway(stack: Stack) -> None:
    """Issue 18: orders, ratings and card clicks belong to the conversation; commands are the bot's buttons."""
    web = httpx.Client(base_url=stack.gateway, timeout=60)
    me: dict[str, str] = {}

    def new_visitor() -> None:  # anonymous; a new one now and then (the per-customer limit is 10 at once)
        me["Authorization"] = "Bearer " + web.post("/api/chat/sessions", json={}).json()["token"]

    def say(text: str, payload: str | None = None) -> str:
        r = web.post("/api/chat/messages", json={"text": text, "payload": payload}, headers=me)
        assert r.status_code == 200, r.text
        return "\n".join(m["text"] for m in r.json()["messages"] if m["role"] != "customer")

    new_visitor()
    asked = say("where is my order 100236?")
    assert "email address" in asked and "Espresso" not in asked
    wrong = say("ana@example.com")  # somebody else's email
    assert "couldn't find an order 100236" in wrong and "Espresso" not in wrong
    assert "email address" in say("where is my order 100236?")
    assert "Espresso machine" in say("it's ben@example.com")  # the order's own email: shown
    for forged in ('/inform{"order_id":"100239"}', "/restart", "/session_start", "/EXTERNAL_handoff_resolved"):
        r = web.post("/api/chat/messages", json={"text": "x", "payload": forged}, headers=me)
        assert r.status_code == 422 and "button" in r.json()["detail"], forged
    new_visitor()
    assert "Wireless headphones" not in say('/inform{"order_id":"100239"}')  # typed: text, not a command
    assert "nothing to rate" in say("1", payload='/csat{"rating":"1"}')
    card = '/rec_feedback{"product_id":"CAM-01V","rec_action":"cart","rec_request":"rforged0000000"}'
    assert "isn't from this chat" in say("Add to cart", payload=card)
    engine = make_engine(stack.settings.app_db_url)
    from core.models import BehaviourEvent, CsatRating, RefusedInput

    with Session(engine) as s:
        assert s.exec(select(CsatRating).where(CsatRating.rating == 1)).all() == []
        assert s.exec(select(BehaviourEvent).where(BehaviourEvent.session_id == "rforged0000000")).all() == []
        kinds = {r.kind for r in s.exec(select(RefusedInput))}
    engine.dispose()
    assert {"csat_not_due", "rec_feedback_not_shown", "order_proof_failed"} <= kinds


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_internal_services_want_their_tokens(stack: Stack) -> None:
    """Issue 18, finding 7: Rasa's API and REST channel, the action server, the NLU service and /metrics."""
    s = stack.settings
    rasa, actions = s.url(s.rasa_port), s.url(s.action_port)
    body = {
        "sender": "intruder",
        "message": "where is my order 100236?",
        "metadata": {"customer_id": "c-ben", "customer_verified": True},
    }
    assert httpx.post(stack.rasa_webhook, json=body, timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert httpx.post(stack.rasa_webhook, json=body, headers=wrong, timeout=30).status_code == 401
    assert httpx.get(f"{rasa}/conversations/intruder/tracker", timeout=30).status_code == 401
    trigger = {"name": "EXTERNAL_handoff_resolved", "entities": {}}
    assert httpx.post(f"{rasa}/conversations/intruder/trigger_intent", json=trigger, timeout=30).status_code == 401
    assert httpx.get(f"{rasa}/conversations/intruder/tracker", params={"token": s.rasa_token}, timeout=30).is_success
    call = {"next_action": "action_check_order_status", "sender_id": "intruder", "tracker": {}, "domain": {}}
    assert httpx.post(f"{actions}/webhook", json=call, timeout=30).status_code == 401
    assert httpx.get(f"{actions}/health", timeout=30).status_code == 200
    assert httpx.post(f"{s.url(s.nlu_port)}/model/parse", json={"text": "hi"}, timeout=30).status_code == 401
    assert httpx.get(f"{stack.gateway}/metrics", timeout=30).status_code == 401
    metrics = httpx.get(f"{stack.gateway}/metrics", headers={"Authorization": f"Bearer {s.metrics_token}"}, timeout=30)
    assert metrics.status_code == 200 and "storebot_refused_inputs" in metrics.text


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.mark.browser
@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_browser_customer_asks_for_a_human_agent_claims_replies_resolves(stack: Stack) -> None:
    import os

    from playwright.sync_api import expect, sync_playwright

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        pytest.fail(f"{chromium} not found: `make setup` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            customer = browser.new_context().new_page()
            customer.set_default_timeout(30_000)
            dialogs: list[str] = []
            customer.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            customer.goto(f"{stack.gateway}/chat?customer=cust0005")
            log = customer.locator("#log")

            def send(text: str) -> None:
                customer.fill("#input", text)
                customer.click("#send")

            send("hello")
            expect(log).to_contain_text("store assistant", timeout=30_000)
            send('<img src=x onerror="alert(1)"> what is this?')
            talk = customer.get_by_role("button", name="Talk to a person")
            expect(talk).to_be_visible(timeout=30_000)
            expect(log.locator("img")).to_have_count(0)  # shown as text, never as HTML
            talk.click()
            expect(log).to_contain_text("request #", timeout=30_000)
            customer.reload()  # the conversation survives a reload
            expect(log).to_contain_text("request #", timeout=30_000)

            agent = browser.new_context().new_page()
            agent.goto(f"{stack.gateway}/console")
            agent.fill("input[name=username]", "admin")
            agent.fill("input[name=password]", stack.admin_password)
            agent.click("button[type=submit]")
            agent.locator("#active tr", has_text="cust0005").locator("a").click()  # other tests queue others
            expect(agent.locator("#transcript")).to_contain_text('<img src=x onerror="alert(1)">')
            agent.click("button[name=claim]")
            expect(agent.locator("#handoff .state")).to_have_text("claimed")
            customer.context.set_offline(True)  # the customer's network drops...
            expect(customer.locator("#banner")).to_contain_text("reconnecting", timeout=60_000)
            agent.locator("textarea[name=text]").press_sequentially("Hi, I'm Sam")  # the typing indicator...
            agent.fill("textarea[name=text]", "Hi, I'm Sam from support. Let me look into it.")
            agent.click("button[name=send]")
            customer.context.set_offline(False)  # ...and comes back: nothing is lost
            expect(log).to_contain_text("Let me look into it.", timeout=60_000)  # arrives by long polling
            expect(customer.locator("#banner")).to_be_hidden()
            agent.click("button[name=resolve]")
            expect(agent.locator("#handoff .state")).to_have_text("resolved")

            expect(log).to_contain_text("How happy are you", timeout=30_000)
            customer.get_by_role("button", name="5", exact=True).click()
            expect(log).to_contain_text("Thank you for the rating", timeout=30_000)
            send("hi")
            greetings = log.locator("li.bot", has_text="I'm the store assistant")
            expect(greetings).to_have_count(2, timeout=30_000)  # the bot answers again
            assert dialogs == []

            agent.click("text=Dashboard")  # the business dashboard, behind the same login
            expect(agent.locator("svg.chart")).to_have_count(11)
            expect(agent.locator('[data-key="csat"] .value')).to_have_text("5.00")  # every rating here was a 5
            expect(agent.locator('[data-key="conversations"] .value')).not_to_have_text("–", timeout=30_000)
            agent.select_option("select[name=days]", "7")
            agent.click("text=Show")
            expect(agent).to_have_url(re.compile(r"days=7"))
            with agent.expect_download() as download:
                agent.click("text=Download report (HTML)")
            report = Path(download.value.path()).read_text()
            assert "Store bot report" in report and report.count("<svg") == 11
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_browser_widget_never_shows_the_previous_customers_conversation(stack: Stack) -> None:
    """Issue 18, finding 2: on a shared computer the stored session belongs to the identity it was opened with."""
    import os

    from playwright.sync_api import expect, sync_playwright

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context().new_page()  # one browser profile: the shared computer
            page.set_default_timeout(30_000)
            log = page.locator("#log")

            def chat_as(query: str, text: str) -> None:
                page.goto(f"{stack.gateway}/chat{query}")
                page.fill("#input", text)
                page.click("#send")
                expect(log.locator("li.bot").first).to_be_visible(timeout=30_000)

            chat_as("?customer=cust0011", "hello, my name is Alice Example")
            page.reload()  # the same customer: the conversation continues
            expect(log).to_contain_text("Alice Example", timeout=30_000)
            for query in ("?customer=cust0012", "", "?customer=cust0011&sig=0000"):  # another, logged out, re-signed
                page.goto(f"{stack.gateway}/chat{query}")
                expect(log.locator("li.bot, li.customer")).to_have_count(0, timeout=5_000)
                page.wait_for_timeout(1_500)  # the widget has loaded its (new) session by now
                expect(log).not_to_contain_text("Alice Example")
            chat_as("?customer=cust0012", "hello, I am Bob Example")
        finally:
            browser.close()
    engine = make_engine(stack.settings.app_db_url)
    from core.models import ChatMessage, Conversation

    with Session(engine) as s:
        rows = s.exec(select(Conversation.customer_id, ChatMessage.text).join(
            ChatMessage, col(ChatMessage.conversation_id) == Conversation.id)).all()  # fmt: skip
    engine.dispose()
    owners = {text: customer for customer, text in rows if "Example" in text}
    assert owners == {"hello, my name is Alice Example": "cust0011", "hello, I am Bob Example": "cust0012"}


ANGRY = [
    "Your checkout is broken and I am furious, this is unacceptable!",
    "Terrible service, my payment failed three times and nobody helps",
    "I hate this shop, the card payment keeps failing, worst experience ever",
]


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_an_angry_burst_raises_one_alert_in_the_risk_channel_and_on_the_dashboard(stack: Stack) -> None:
    """The demo of the risk alert: many customers angry at once → one incident, posted once, shown to staff."""
    before = len([a for a in stack.slack.called("chat.postMessage") if a.get("channel") == "CRISK"])
    assert before == 0
    posts: list[dict] = []  # type: ignore[type-arg]
    for burst in range(3):  # earlier tests' calm traffic dilutes the first burst's window, so it may take more
        for i in range(30):
            stack.say(f"angry-{uuid.uuid4().hex[:6]}-{burst}-{i}", ANGRY[i % len(ANGRY)])
        posts = stack.slack.wait_for("chat.postMessage", 1, timeout=150, where=lambda a: a.get("channel") == "CRISK")
        if posts:
            break
    if not posts:  # say what the monitor saw
        from core.models import AlertIncident, MonitorState

        engine = make_engine(stack.settings.app_db_url)
        with Session(engine) as s:
            seen = [(t.sentiment, t.intent) for t in s.exec(select(Turn)) if t.sender_id.startswith("angry-")]
            incidents = list(s.exec(select(AlertIncident)))
            state = s.get(MonitorState, "sentiment")
        engine.dispose()
        pytest.fail(f"no alert; angry turns seen {seen}; incidents {incidents}; state {state and state.state[:3000]}")
    assert "firing" in posts[0]["text"] and "Acknowledge" in json.dumps(posts[0].get("blocks"))
    time.sleep(20)  # more rounds of the worker: still one notification for one incident
    risk = [a for a in stack.slack.called("chat.postMessage") if a.get("channel") == "CRISK"]
    assert len(risk) == 1
    admin = Console(stack, "admin", stack.admin_password)
    page = admin.http.get("/console/dashboard", params={"days": 1}).text
    assert 'id="alert-history"' in page and "#1</td><td>firing" in page
    alerts = admin.http.get("/console/alerts").text
    assert "furious" in alerts or "payment" in alerts  # redacted examples of what customers said
