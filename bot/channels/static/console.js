// Support console: refreshes the queue and the open conversation. Text is always set with
// textContent, never parsed as HTML.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function linkCell(row, h) {
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.href = "/console/conversations/" + encodeURIComponent(h.conversation_id);
    a.textContent = "#" + h.id;
    td.appendChild(a);
    row.appendChild(td);
  }

  async function refreshQueue(section) {
    try {
      const r = await fetch(section.dataset.refresh, { credentials: "same-origin" });
      if (r.status === 401) { location.href = "/console/login"; return; }
      if (!r.ok) return;
      const data = await r.json();
      const body = document.querySelector("#active tbody");
      body.replaceChildren();
      if (!data.active.length) {
        const tr = document.createElement("tr");
        tr.className = "empty";
        const td = cell(tr, "Nobody is waiting.");
        td.colSpan = 8;
        body.appendChild(tr);
      }
      for (const h of data.active) {
        const tr = document.createElement("tr");
        tr.className = h.state;
        linkCell(tr, h);
        [h.state, h.agent || "", h.reason, h.channel, h.customer_id || "", h.recent.join(" · "),
         h.sentiment_trend.join(" → ")].forEach((t) => cell(tr, t));
        body.appendChild(tr);
      }
    } catch (e) { /* offline: try again on the next tick */ }
  }

  function appendMessage(list, m) {
    if (document.getElementById("m" + m.id)) return;
    const li = document.createElement("li");
    li.className = "msg " + m.role;
    li.id = "m" + m.id;
    li.dataset.id = m.id;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = m.author || m.role;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = m.text;
    li.append(role, text);
    if (m.role === "customer" && m.intent) {
      const nlu = document.createElement("span");
      nlu.className = "nlu";
      nlu.textContent = m.intent + " " + (m.confidence || 0).toFixed(2) + " · " + (m.sentiment || "?") + " " +
        (m.sentiment_score || 0).toFixed(2);
      li.appendChild(nlu);
    }
    list.appendChild(li);
  }

  async function refreshConversation(list) {
    const ids = [...list.querySelectorAll("li[data-id]")].map((li) => Number(li.dataset.id));
    const after = ids.length ? Math.max(...ids) : 0;
    try {
      const r = await fetch(list.dataset.refresh + "?after=" + after, { credentials: "same-origin" });
      if (r.status === 401) { location.href = "/console/login"; return; }
      if (!r.ok) return;
      const data = await r.json();
      data.messages.forEach((m) => appendMessage(list, m));
      const box = document.getElementById("handoff");
      if (data.handoff && box && box.dataset.state !== data.handoff.state) location.reload();
    } catch (e) { /* try again */ }
  }

  const queue = document.getElementById("queue");
  if (queue) setInterval(() => refreshQueue(queue), 3000);
  const transcript = document.getElementById("transcript");
  if (transcript) setInterval(() => refreshConversation(transcript), 2000);

  const reply = document.getElementById("reply");
  if (reply && transcript) {
    let last = 0;
    reply.querySelector("textarea").addEventListener("input", () => {
      const now = Date.now();
      if (now - last < 3000) return;
      last = now;
      fetch("/console/conversations/" + encodeURIComponent(transcript.dataset.conversation) + "/typing", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      }).catch(() => {});
    });
  }
})();
