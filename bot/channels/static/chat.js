// Store web chat widget. The session token lives in localStorage together with the identity the page
// was opened with (?customer= and sig=): a reload continues the same conversation, while a page opened
// for another customer, or without one after a logout, starts a new session and never shows the
// previous customer's transcript (shared computers). New messages arrive by long polling with the
// last id seen, so a dropped network loses nothing and shows nothing twice. All text is set with
// textContent: never parsed as HTML.
"use strict";
(function () {
  const KEY = "storebot.session";
  const params = new URLSearchParams(location.search);
  const identity = JSON.stringify([params.get("customer") || "", params.get("sig") || ""]);
  const log = document.getElementById("log");
  const input = document.getElementById("input");
  const form = document.getElementById("form");
  const typing = document.getElementById("typing");
  const banner = document.getElementById("banner");
  localStorage.removeItem("storebot.token");  // the widget's older format: a token bound to nobody
  let token = storedToken();
  let lastId = 0;
  let waitingForBot = false;
  let agentTyping = false;

  function showTyping() { typing.hidden = !(waitingForBot || agentTyping); }
  function setBanner(text) { banner.textContent = text || ""; banner.hidden = !text; }

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    if (r.status === 401 && path !== "/api/chat/sessions") {
      const e = new Error("session"); e.code = 401; throw e;
    }
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail || detail; } catch (_) { /* keep statusText */ }
      const e = new Error(detail); e.code = r.status; throw e;
    }
    return r.json();
  }

  function storedToken() {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY) || "null");
      if (saved && saved.identity === identity && typeof saved.token === "string") return saved.token;
    } catch (_) { /* unreadable: start afresh */ }
    localStorage.removeItem(KEY);  // another customer's (or nobody's) session: never reused
    return null;
  }

  async function newSession() {
    const body = {};
    if (params.get("customer")) body.customer_id = params.get("customer");
    if (params.get("sig")) body.signature = params.get("sig");
    const s = await api("POST", "/api/chat/sessions", body);
    token = s.token;
    localStorage.setItem(KEY, JSON.stringify({ token, identity }));
    log.replaceChildren();
    lastId = 0;
  }

  function safeUrl(url) {
    try {
      const u = new URL(url, location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (_) { return null; }
  }

  function buttonsOf(m) {
    const wrap = document.createElement("div");
    wrap.className = "buttons";
    for (const b of m.data.buttons || []) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = b.title;
      btn.addEventListener("click", () => send(b.title, b.payload || b.title));
      wrap.appendChild(btn);
    }
    return wrap;
  }

  function cardInto(li, card) {
    const box = document.createElement("div");
    box.className = "card";
    const name = document.createElement("strong");
    name.textContent = card.name;
    const price = document.createElement("span");
    price.className = "price";
    price.textContent = "$" + Number(card.price).toFixed(2);
    const reason = document.createElement("p");
    reason.textContent = card.reason || "";
    box.append(name, price, reason);
    const href = safeUrl(card.url || "");
    if (href) {
      const a = document.createElement("a");
      a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer"; a.textContent = "View product";
      box.appendChild(a);
    }
    const text = li.querySelector(".text");
    if (text) text.replaceWith(box); else li.prepend(box);
  }

  function render(m) {
    if (m.id <= lastId || document.getElementById("m" + m.id)) return;
    lastId = Math.max(lastId, m.id);
    const custom = m.data && m.data.custom;
    if (custom && custom.type === "product_card" && !m.text) {
      const prev = log.lastElementChild;
      if (prev && prev.classList.contains("bot") && !prev.querySelector(".card")) { cardInto(prev, custom); return; }
      const li = document.createElement("li");
      li.className = "msg bot"; li.id = "m" + m.id;
      cardInto(li, custom);
      log.appendChild(li);
      return;
    }
    if (!m.text && !(m.data.buttons || []).length) return;
    const li = document.createElement("li");
    li.className = "msg " + m.role;
    li.id = "m" + m.id;
    if (m.role === "agent" && m.author) {
      const who = document.createElement("span");
      who.className = "author"; who.textContent = m.author;
      li.appendChild(who);
    }
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = m.text;
    li.appendChild(text);
    if ((m.data.buttons || []).length) li.appendChild(buttonsOf(m));
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }

  function applyStatus(data) {
    agentTyping = !!data.agent_typing;
    showTyping();
  }

  async function send(text, payload) {
    if (!text.trim() && !payload) return;
    waitingForBot = true; showTyping();
    try {
      const body = { text };
      if (payload && payload !== text) body.payload = payload;
      const data = await api("POST", "/api/chat/messages", body);
      data.messages.forEach(render);
      applyStatus(data);
      setBanner("");
      return true;
    } catch (e) {
      if (e.code === 401) { await newSession(); return send(text, payload); }
      setBanner(e.code ? "Not sent: " + e.message : "Not sent: no connection. Your text is kept; press Send again.");
      return false;
    } finally {
      waitingForBot = false; showTyping();
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    if (!(await send(text))) input.value = text;  // keep what the customer typed
  });

  async function poll() {
    let delay = 1000;
    for (;;) {
      try {
        const data = await api("GET", "/api/chat/messages?after=" + lastId + "&wait=20");
        data.messages.forEach(render);
        applyStatus(data);
        setBanner("");
        delay = 1000;
      } catch (e) {
        if (e.code === 401) { await newSession().catch(() => {}); continue; }
        setBanner("Connection lost, reconnecting…");
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 10000);
      }
    }
  }

  (async function start() {
    for (let delay = 1000; ; delay = Math.min(delay * 2, 10000)) {
      try {
        if (!token) await newSession();
        const data = await api("GET", "/api/chat/messages?after=0");
        data.messages.forEach(render);
        applyStatus(data);
        setBanner("");
        break;
      } catch (e) {
        if (e.code === 401) { token = null; continue; }
        setBanner("Connecting…");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    document.getElementById("who").textContent = params.get("customer") ? "· " + params.get("customer") : "";
    poll();
  })();
})();
