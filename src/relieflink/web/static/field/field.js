// The offline field app (see web/routes/field.py): today's routes or gate kept in IndexedDB,
// tracking events queued there with their client event id and sent in order through
// POST /api/v1/dispatch/events:batch when the network is back. Each event keeps the server's
// answer (accepted, replayed, refused and why); nothing is counted delivered before the server
// accepted it. Plain DOM, no build step; text comes from the page (#field-texts), never HTML.
"use strict";

(() => {
  const T = JSON.parse(document.getElementById("field-texts").textContent);
  const API = "/api/v1";
  const BATCH = 500; // the endpoint's limit
  const DELIVERABLE = ["departed", "at_gate", "handed_off"];
  const FAILABLE = ["loaded", ...DELIVERABLE];
  const FINAL = ["delivered", "failed"];
  const state = { token: null, user: null, day: null, savedAt: null, events: [], syncing: false };
  const formValues = new Map(); // what was typed, kept across re-renders
  let counter = 0;

  // --- IndexedDB: "kv" (token, user, the day per user) and "events" (the queue) -------------
  const dbReady = new Promise((resolve, reject) => {
    const open = indexedDB.open("relieflink-field", 1);
    open.onupgradeneeded = () => {
      open.result.createObjectStore("kv");
      open.result.createObjectStore("events", { keyPath: "client_event_id" });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });

  function store(name, mode, work) {
    return dbReady.then((db) => new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      const request = work(tx.objectStore(name));
      tx.oncomplete = () => resolve(request ? request.result : undefined);
      tx.onerror = tx.onabort = () => reject(tx.error);
    }));
  }
  const kvGet = (key) => store("kv", "readonly", (s) => s.get(key));
  const kvPut = (key, value) => store("kv", "readwrite", (s) => s.put(value, key));
  const kvDelete = (key) => store("kv", "readwrite", (s) => s.delete(key));
  const saveEvent = (event) => store("events", "readwrite", (s) => s.put(event));
  const loadEvents = () => store("events", "readonly", (s) => s.getAll());

  // --- small DOM helpers ---------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(typeof child === "string" ? document.createTextNode(child) : child);
      }
    }
    return node;
  }
  const fmt = (text, values) => text.replace(/%\((\w+)\)s/g, (_, k) => String(values[k]));
  const placeName = (place) => (document.body.dataset.lang === "zh_CN" ? place.name_zh : place.name);
  const remember = (id) => (event) => formValues.set(id, event.target.value);

  // --- the server ----------------------------------------------------------------------------
  async function api(path, options) {
    const headers = { "Content-Type": "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    return fetch(API + path, { ...options, headers });
  }

  async function signIn(event) {
    event.preventDefault();
    const form = event.target;
    const error = document.getElementById("sign-in-error");
    error.hidden = true;
    let response;
    try {
      response = await api("/auth/sign-in", {
        method: "POST",
        body: JSON.stringify({ username: form.username.value, password: form.password.value }),
      });
    } catch (err) {
      error.textContent = T.offline;
      error.hidden = false;
      return;
    }
    if (!response.ok) {
      error.textContent = T.wrong_credentials;
      error.hidden = false;
      return;
    }
    const body = await response.json();
    state.token = body.access_token;
    state.user = { id: body.user.id, role: body.user.role, full_name: body.user.full_name };
    await kvPut("session", { token: state.token, user: state.user });
    form.password.value = "";
    await loadDay();
    show();
    await sync();
  }

  async function signOut(message) {
    if (state.token) api("/auth/sign-out", { method: "POST" }).catch(() => {}); // revoke it
    state.token = null;
    await kvDelete("session");
    show(message);
  }

  async function loadDay() {
    const saved = await kvGet(`day:${state.user.id}`);
    state.day = saved ? saved.data : null;
    state.savedAt = saved ? saved.savedAt : null;
    state.events = (await loadEvents())
      .filter((e) => e.user_id === state.user.id)
      .sort((a, b) => a.seq - b.seq);
  }

  // The day as the server sees it; kept on the phone for when the network is gone.
  async function refresh() {
    try {
      const response = await api("/dispatch/my-day", { method: "GET" });
      if (response.status === 401) return signOut(T.session_over);
      if (response.status === 403) return signOut(T.no_work);
      if (response.ok) {
        state.day = await response.json();
        state.savedAt = new Date().toISOString();
        await kvPut(`day:${state.user.id}`, { data: state.day, savedAt: state.savedAt });
      }
    } catch (err) {
      // offline: the saved day stays
    }
    render();
  }

  // Send the queue in the order it was recorded; each event keeps its own answer. A lost answer
  // is harmless: the same client event ids sent again are answered "replayed".
  async function sync() {
    if (state.syncing || !state.token) return;
    const queued = state.events.filter((e) => e.state === "queued");
    if (!queued.length) return refresh();
    state.syncing = true;
    render();
    try {
      for (let start = 0; start < queued.length; start += BATCH) {
        const chunk = queued.slice(start, start + BATCH);
        const response = await api("/dispatch/events:batch", {
          method: "POST",
          body: JSON.stringify({ events: chunk.map((e) => e.body) }),
        });
        if (response.status === 401) {
          state.syncing = false;
          return signOut(T.session_over);
        }
        if (!response.ok) break; // the batch itself was refused: everything stays queued
        for (const answer of (await response.json()).results) {
          const event = chunk[answer.index];
          event.answer = answer;
          if (answer.status !== 200) event.state = "refused";
          else event.state = answer.event.replayed ? "replayed" : "accepted";
          await saveEvent(event);
        }
      }
    } catch (err) {
      // the network went again: what was not answered stays queued
    }
    state.syncing = false;
    await refresh();
  }

  async function record(body, label) {
    counter += 1;
    const event = {
      client_event_id: `field-${crypto.randomUUID()}`,
      seq: Date.now() * 1000 + (counter % 1000),
      user_id: state.user.id,
      state: "queued",
      label,
      body: null,
      answer: null,
    };
    event.body = { client_event_id: event.client_event_id, occurred_at: new Date().toISOString(), ...body };
    await saveEvent(event);
    state.events.push(event);
    render();
    if (navigator.onLine) sync();
  }

  // --- what the phone shows: the server's state moved on by the events still queued ----------
  function projected() {
    const route = new Map();
    const parcel = new Map();
    const stopParcels = new Map();
    for (const r of state.day ? state.day.routes : []) {
      route.set(r.route.id, r.route.status);
      for (const s of r.stops) {
        stopParcels.set(s.stop.id, s.parcels.map((p) => p.id));
        for (const p of s.parcels) parcel.set(p.id, p.status);
      }
    }
    for (const g of state.day ? state.day.gates : []) {
      for (const p of g.parcels) parcel.set(p.id, p.status);
    }
    const pending = new Set();
    const move = (ids, from, to) => ids.forEach((id) => { if (from.includes(parcel.get(id))) parcel.set(id, to); });
    for (const e of state.events.filter((x) => x.state === "queued")) {
      const b = e.body;
      if (b.route_id && (b.kind === "loaded" || b.kind === "departed")) {
        route.set(b.route_id, b.kind);
        const ids = [...stopParcels.values()].flat().filter((id) => routeOf(id) === b.route_id);
        move(ids, b.kind === "loaded" ? ["planned"] : ["loaded"], b.kind);
      } else if (b.stop_id) {
        const ids = stopParcels.get(b.stop_id) || [];
        if (b.kind === "arrived") move(ids, ["departed"], "at_gate");
        else move(ids, ["at_gate"], "handed_off");
      } else if (b.parcel_id) {
        pending.add(b.parcel_id);
      }
    }
    return { route, parcel, pending };
  }

  function routeOf(parcelId) {
    for (const r of state.day.routes) {
      if (r.stops.some((s) => s.parcels.some((p) => p.id === parcelId))) return r.route.id;
    }
    return null;
  }

  function lastAnswer(parcelId) {
    const mine = state.events.filter((e) => e.body.parcel_id === parcelId && e.state !== "queued");
    return mine.length ? mine[mine.length - 1] : null;
  }

  function refusal(event) {
    const problem = event.answer.problem || { detail: "", errors: [] };
    if ((problem.errors || []).some((e) => (e.loc || []).join(".") === "code") && event.body.kind === "delivered") {
      return `${T.wrong_code} ${problem.detail}`;
    }
    const fields = (problem.errors || []).map((e) => `${(e.loc || []).join(".")}: ${e.msg}`);
    return [problem.detail, ...fields].filter(Boolean).join("; ");
  }

  // A large button that records one event.
  function touch(label, attrs, onclick, danger) {
    return el("button", { type: "button", class: `field-touch ${danger ? "ops-danger" : "primary"}`, onclick, ...attrs }, label);
  }

  function parcelItem(p, status, pending, allowDeliver, allowFail) {
    const answer = lastAnswer(p.id);
    const badge = pending
      ? el("span", { class: "ops-badge field-pending" }, T.state_queued)
      : el("span", { class: `ops-badge ops-badge-${status}` }, T.parcel[status] || status);
    const where = [p.building, p.unit].filter(Boolean).join(" / ");
    const item = el("li", { class: "ops-parcel", id: `parcel-${p.id}`, "data-status": pending ? "pending" : status },
      el("p", { class: "ops-parcel-head" }, el("strong", {}, `P${p.id}`), ` · ${p.household_code}`,
        where ? ` · ${where}` : "", ` · ${p.packs} ${T.packs} `, badge));
    if (pending) item.append(el("p", { class: "hint" }, T.pending_here));
    if (!pending && answer && answer.state === "refused") {
      item.append(el("p", { class: "ops-field-error", role: "alert" }, refusal(answer)));
    }
    if (pending || FINAL.includes(status)) return item;
    if (allowDeliver) {
      const id = `code-${p.id}`;
      const input = el("input", { id, type: "text", inputmode: "numeric", autocomplete: "off", maxlength: "6",
        pattern: "[0-9]{6}", value: formValues.get(id) || "", oninput: remember(id), "aria-describedby": `hint-${p.id}` });
      const deliver = (e) => {
        e.preventDefault();
        const code = input.value.trim();
        if (!/^[0-9]{6}$/.test(code)) {
          input.setAttribute("aria-invalid", "true");
          item.querySelector(`#hint-${p.id}`).textContent = T.code_needed;
          input.focus();
          return;
        }
        formValues.delete(id);
        record({ kind: "delivered", parcel_id: p.id, code }, `P${p.id}`);
      };
      item.append(el("form", { class: "ops-event ops-deliver", onsubmit: deliver },
        el("div", { class: "field" }, el("label", { for: id }, fmt(T.code_for, { id: p.id })), input,
          el("span", { class: "hint", id: `hint-${p.id}` }, T.code_hint)),
        el("button", { type: "submit", class: "primary field-touch" }, T.delivered)));
    }
    if (allowFail) {
      const id = `reason-${p.id}`;
      const select = el("select", { id, onchange: remember(id) },
        Object.entries(T.reason).map(([value, label]) =>
          el("option", { value, selected: formValues.get(id) === value }, label)));
      const fail = () => {
        formValues.delete(id);
        record({ kind: "failed", parcel_id: p.id, reason: select.value }, `P${p.id}`);
      };
      item.append(el("details", { class: "ops-fail" }, el("summary", {}, T.could_not),
        el("div", { class: "field" }, el("label", { for: id }, T.why), select),
        touch(T.record_failed, { id: `fail-${p.id}` }, fail, true)));
    }
    return item;
  }

  function routeSection(sheet, view) {
    const r = sheet.route;
    const status = view.route.get(r.id);
    const section = el("section", { class: "ops-stop field-route", id: `route-${r.id}` },
      el("h2", {}, `${T.route} ${r.id} `, el("span", { class: "detail" }, `${T.route_status[status] || status} · ${T.depot} ${placeName(r.depot)}`)));
    if (status === "planned") {
      section.append(touch(T.loaded, { id: `loaded-${r.id}` }, () => record({ kind: "loaded", route_id: r.id }, `${T.route} ${r.id}`)));
    }
    if (status === "loaded") {
      section.append(touch(T.departed, { id: `departed-${r.id}` }, () => record({ kind: "departed", route_id: r.id }, `${T.route} ${r.id}`)));
    }
    for (const s of sheet.stops) {
      const statuses = s.parcels.map((p) => view.parcel.get(p.id));
      const stop = el("div", { class: "field-stop", id: `stop-${s.stop.id}` },
        el("h3", {}, `${s.stop.seq}. ${placeName(s.stop.community)}`),
        el("p", { class: "detail" }, T.mode[s.stop.inner_mode] || s.stop.inner_mode));
      const label = `${T.stop} ${s.stop.seq}`;
      if (statuses.includes("departed")) {
        stop.append(touch(T.arrived, { id: `arrived-${s.stop.id}` }, () => record({ kind: "arrived", stop_id: s.stop.id }, label)));
      }
      const atGate = statuses.filter((x) => x === "at_gate").length;
      if (s.stop.inner_mode !== "courier" && atGate > 0) {
        const id = `counted-${s.stop.id}`;
        const input = el("input", { id, type: "number", inputmode: "numeric", min: "0", value: formValues.get(id) || String(atGate), oninput: remember(id) });
        stop.append(el("div", { class: "field" }, el("label", { for: id }, T.counted), input),
          touch(T.handed_off, { id: `handed-${s.stop.id}` }, () => {
            formValues.delete(id);
            record({ kind: "handed_off", stop_id: s.stop.id, counted: Number(input.value) }, label);
          }));
      }
      const courierCarries = s.stop.inner_mode === "courier";
      stop.append(el("ul", { class: "ops-parcels plain" }, s.parcels.map((p) => {
        const st = view.parcel.get(p.id);
        const deliverable = DELIVERABLE.includes(st) && p.attempts_left > 0 && (courierCarries || st !== "departed");
        return parcelItem(p, st, view.pending.has(p.id), deliverable, FAILABLE.includes(st));
      })));
      section.append(stop);
    }
    return section;
  }

  function gateSection(g, view) {
    return el("section", { class: "ops-stop field-route", id: `gate-${g.community.id}` },
      el("h2", {}, placeName(g.community), " ", el("span", { class: "detail" }, `${T.team} ${g.team_code}`)),
      el("ul", { class: "ops-parcels plain" }, g.parcels.map((p) =>
        parcelItem(p, view.parcel.get(p.id), view.pending.has(p.id), p.can_deliver, p.can_fail))));
  }

  function eventItem(e) {
    const detail = e.state === "refused" ? refusal(e) : "";
    return el("li", { class: `field-event field-${e.state}`, "data-state": e.state, "data-client-event-id": e.client_event_id },
      el("strong", {}, `${T[e.body.kind] || e.body.kind} · ${e.label}`), " — ",
      el("span", { class: "field-answer" }, T[`state_${e.state}`]),
      detail ? el("span", { class: "detail" }, ` ${detail}`) : null);
  }

  function render() {
    const app = document.getElementById("app");
    const net = document.getElementById("net");
    net.textContent = navigator.onLine ? T.online : T.offline;
    net.className = `field-net ${navigator.onLine ? "field-online" : "field-offline"}`;
    if (!state.token || !state.user) return;
    const view = projected();
    const delivered = new Set();
    for (const r of state.day ? state.day.routes : []) {
      r.stops.forEach((s) => s.parcels.forEach((p) => { if (p.status === "delivered") delivered.add(p.id); }));
    }
    for (const g of state.day ? state.day.gates : []) {
      g.parcels.forEach((p) => { if (p.status === "delivered") delivered.add(p.id); });
    }
    state.events.forEach((e) => {
      if (e.body.kind === "delivered" && (e.state === "accepted" || e.state === "replayed")) delivered.add(e.body.parcel_id);
    });
    const count = (s) => state.events.filter((e) => e.state === s).length;
    const bar = el("div", { class: "field-bar" },
      el("span", { class: "who" }, state.user.full_name),
      el("button", { type: "button", class: "field-touch primary", id: "sync", disabled: state.syncing || !count("queued"), onclick: sync },
        state.syncing ? T.syncing : T.sync),
      el("button", { type: "button", class: "link-button", id: "sign-out", onclick: () => signOut() }, T.sign_out));
    const stats = el("dl", { class: "field-stats" },
      el("div", {}, el("dt", {}, T.confirmed), el("dd", { id: "count-delivered" }, String(delivered.size))),
      el("div", {}, el("dt", {}, T.waiting), el("dd", { id: "count-queued" }, String(count("queued")))),
      el("div", {}, el("dt", {}, T.refused_count), el("dd", { id: "count-refused" }, String(count("refused")))));
    const work = [];
    if (!state.day) work.push(el("p", { class: "alert" }, T.no_day));
    else {
      work.push(el("p", { class: "hint", id: "saved-at" }, `${T.saved_at} ${new Date(state.savedAt).toLocaleTimeString()} · ${state.day.day}`));
      if (!state.day.routes.length && !state.day.gates.length) work.push(el("p", {}, T.nothing_today));
      state.day.routes.forEach((r) => work.push(routeSection(r, view)));
      state.day.gates.forEach((g) => work.push(gateSection(g, view)));
    }
    const log = state.events.slice().reverse();
    const focused = document.activeElement && document.activeElement.id;
    app.replaceChildren(bar, stats, ...work,
      log.length ? el("section", { class: "field-log" }, el("h2", {}, T.events), el("ul", { class: "plain", id: "events" }, log.map(eventItem))) : "");
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  }

  function show(message) {
    const signedIn = Boolean(state.token);
    document.getElementById("sign-in").hidden = signedIn;
    document.getElementById("app").hidden = !signedIn;
    const error = document.getElementById("sign-in-error");
    error.hidden = !message;
    error.textContent = message || "";
    render();
  }

  async function start() {
    document.getElementById("sign-in").addEventListener("submit", signIn);
    window.addEventListener("online", () => { render(); sync(); });
    window.addEventListener("offline", render);
    setInterval(() => { if (navigator.onLine) sync(); }, 30_000);
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/field-sw.js", { scope: document.body.dataset.scope }).catch(() => {});
    }
    const session = await kvGet("session");
    if (session) {
      state.token = session.token;
      state.user = session.user;
      await loadDay();
    }
    show();
    if (state.token && navigator.onLine) sync();
  }

  start();
})();
