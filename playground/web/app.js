// Warden playground: plain JavaScript, no build step. The server renders
// every fragment with html/template (so everything in it is escaped); this
// script swaps fragments in, and turns clicks and forms into JSON posts.
// Text that this script shows itself goes through textContent only.
"use strict";

(function () {
  let as = document.body.dataset.as;
  let source = null;
  const shown = new Map(); // pane name -> last HTML
  let applied = 0;

  const $ = (id) => document.getElementById(id);

  function say(text) {
    $("command-status").textContent = text || "";
  }

  async function post(path, body) {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { /* empty answer */ }
    if (!res.ok) {
      throw new Error(data.error || res.status + " " + res.statusText);
    }
    return data;
  }

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }

  // keepForm copies what was typed in a modal into its re-rendered form.
  function keepForm(oldRoot, newRoot) {
    const oldForm = oldRoot.querySelector("form.modal");
    const newForm = newRoot.querySelector("form.modal");
    if (!oldForm || !newForm || oldForm.dataset.viewId !== newForm.dataset.viewId) return;
    for (const el of oldForm.elements) {
      if (!el.name) continue;
      const twin = newForm.elements.namedItem(el.name);
      if (twin && "value" in twin) twin.value = el.value;
    }
  }

  function apply(state) {
    for (const [name, html] of Object.entries(state.panes)) {
      if (shown.get(name) === html) continue;
      const el = $("pane-" + name);
      if (!el) continue;
      shown.set(name, html);
      const stick = nearBottom(el);
      if (name === "modal") {
        const tmp = document.createElement("div");
        tmp.innerHTML = html;
        keepForm(el, tmp);
        el.replaceChildren(...tmp.childNodes);
      } else {
        el.innerHTML = html;
      }
      if (el.classList.contains("feed") && stick) el.scrollTop = el.scrollHeight;
    }
    const me = document.querySelector(".person.current .pname");
    $("me").textContent = me ? me.textContent : as;
    $("play").disabled = !!state.scenarioRunning;
    applied++;
    document.body.dataset.applied = String(applied);
  }

  function connect() {
    if (source) source.close();
    shown.clear();
    source = new EventSource("/events?as=" + encodeURIComponent(as));
    source.addEventListener("state", (ev) => apply(JSON.parse(ev.data)));
    source.onopen = () => { $("conn").textContent = "live"; };
    source.onerror = () => { $("conn").textContent = "reconnecting…"; };
  }

  function confirmDialog(btn) {
    const d = btn.dataset;
    if (!d.confirmTitle) return Promise.resolve(true);
    const dlg = $("confirm");
    $("confirm-title").textContent = d.confirmTitle;
    $("confirm-text").textContent = d.confirmText || "";
    $("confirm-ok").textContent = d.confirmOk || "OK";
    $("confirm-deny").textContent = d.confirmDeny || "Cancel";
    return new Promise((resolve) => {
      const ok = $("confirm-ok");
      const deny = $("confirm-deny");
      const done = (answer) => {
        ok.onclick = deny.onclick = dlg.oncancel = null;
        dlg.close();
        resolve(answer);
      };
      ok.onclick = () => done(true);
      deny.onclick = () => done(false);
      dlg.oncancel = (ev) => { ev.preventDefault(); done(false); }; // Escape
      dlg.showModal();
    });
  }

  async function click(btn) {
    const msg = btn.closest(".msg");
    if (!msg) return;
    if (!(await confirmDialog(btn))) return;
    say("");
    try {
      await post("/api/click", {
        as: as,
        kind: msg.dataset.kind,
        channel: msg.dataset.channel,
        ts: msg.dataset.ts,
        action_id: btn.dataset.actionId,
        value: btn.dataset.value,
      });
    } catch (e) {
      say(e.message);
    }
  }

  document.addEventListener("click", async (ev) => {
    const t = ev.target;
    const person = t.closest("[data-person]");
    if (person) {
      as = person.dataset.person;
      const u = new URL(location.href);
      u.searchParams.set("as", as);
      history.replaceState(null, "", u);
      say("");
      connect();
      return;
    }
    const close = t.closest("[data-close-view]");
    if (close) {
      try { await post("/api/close", { as: as, view: close.dataset.closeView }); } catch (e) { say(e.message); }
      return;
    }
    const btn = t.closest("button[data-action-id]");
    if (btn) {
      await click(btn);
      return;
    }
    if (t.id === "play") {
      try { await post("/api/scenario", {}); } catch (e) { say(e.message); }
    }
  });

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (form.id !== "command" && !form.classList.contains("modal")) return; // the confirm dialog closes itself
    ev.preventDefault();
    if (form.id === "command") {
      const input = $("command-text");
      try {
        await post("/api/command", { as: as, text: input.value });
        input.value = "";
        say("");
      } catch (e) {
        say(e.message);
      }
      return;
    }
    if (form.classList.contains("modal")) {
      const values = {};
      for (const [k, v] of new FormData(form)) values[k] = String(v);
      try {
        await post("/api/submit", { as: as, view: form.dataset.viewId, values: values });
      } catch (e) {
        say(e.message);
      }
    }
  });

  connect();
})();
