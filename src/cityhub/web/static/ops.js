// The operations page: the first view is one answer of /ops/view (every layer the reader may
// see, as columns, with the summary and the congestion history, from the hub's in-memory
// snapshot of the district); /ops/events then streams the changed rows. Every request carries
// the user's bearer token when one is set, so what the page shows follows the governance
// policies: without one, public data only.
"use strict";
(function () {
  const TOKEN_KEY = "cityhub.token";
  const layers = { roads: new Map(), signals: new Map(), sensors: new Map(), stations: new Map(),
    meters: new Map(), alerts: new Map(), indices: new Map(), requests: new Map() };
  // How a layer's columns (from /ops/view and the event stream) become the map's items.
  const MAKE = {
    roads: (c, i) => (c.line[i] ? { id: c.id[i], name: c.name[i], line: pairs(c.line[i]), level: c.level[i], index: c.index[i], speed: c.speed[i] } : null),
    signals: (c, i) => at(c, i) && { id: c.id[i], name: c.name[i], at: at(c, i), phase: c.phase[i], state: c.state[i] },
    sensors: (c, i) => at(c, i) && { id: c.id[i], at: at(c, i), state: c.state[i] },
    stations: (c, i) => ({ id: c.id[i], name: c.name[i], at: at(c, i), aqi: c.aqi[i], level: c.level[i] }),
    meters: (c, i) => ({ id: c.id[i], name: c.name[i], at: at(c, i), power: c.power[i] }),
    alerts: (c, i) => at(c, i) && { id: c.id[i], at: at(c, i), severity: c.severity[i], description: c.description[i], category: c.category[i], issued: c.issued[i] },
    indices: (c, i) => ({ id: c.id[i], index: c.index[i], level: c.level[i] }),
  };
  const at = (c, i) => (c.x[i] == null ? null : [c.x[i], c.y[i]]);
  const pairs = (flat) => { const out = []; for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]); return out; };
  const state = { ready: false, readyMs: null, updates: 0, lastUpdate: null, summary: null, denied: [],
    history: [], layers, errors: [], reader: null, features: {}, bytes: 0 };
  window.cityhub = state;

  // ---- data access ------------------------------------------------------------------------
  function headers() {
    const h = { Accept: "application/json" };
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  async function api(path, init) {
    const answer = await fetch(path, Object.assign({ headers: headers() }, init || {}));
    if (answer.status === 401 || answer.status === 403) return { denied: true, body: null, answer };
    if (!answer.ok) throw new Error(`${path}: HTTP ${answer.status}`);
    return { denied: false, body: await answer.json(), answer };
  }

  function fill(key, cols, replace) {
    const target = layers[key];
    if (replace) target.clear();
    for (let i = 0; i < cols.id.length; i++) { const item = MAKE[key](cols, i); if (item) target.set(item.id, item); else target.delete(cols.id[i]); }
  }

  // The whole first view in one answer: every visible layer as columns, summary, history.
  async function loadView() {
    const res = await api("/ops/view");
    if (res.denied) {  // an expired or refused token: start again as an anonymous visitor
      if (localStorage.getItem(TOKEN_KEY)) { localStorage.removeItem(TOKEN_KEY); return loadView(); }
      throw new Error("/ops/view: not permitted");
    }
    const body = res.body;
    for (const key of Object.keys(MAKE)) { if (body.layers[key]) fill(key, body.layers[key], true); else layers[key].clear(); }
    state.denied = body.denied;
    state.summary = body.summary;
    state.history = body.history;
    state.reader = body.reader;
    state.features = body.features || {};
    state.version = body.version;
  }

  async function loadOptional() {
    const f = state.features;
    state.audit = null;
    if (f.audit === "denied") state.audit = "denied";
    else if (f.audit) {
      const head = await api("/audit/head");
      const size = (!head.denied && head.body && head.body.size) || 0;
      if (head.denied) state.audit = "denied";
      else {
        const res = await api(`${f.audit}?start=${Math.max(0, size - 20)}&end=${size}`);
        state.audit = res.denied ? "denied" : listOf(res.body).map((leaf) => leaf.record || leaf).reverse();
      }
    }
    if (f.open311) {
      const res = await api(f.open311);
      layers.requests.clear();
      for (const r of res.denied ? [] : listOf(res.body)) {
        if (r.status === "closed" || r.lat == null) continue;
        layers.requests.set(String(r.service_request_id), { id: String(r.service_request_id), at: [Number(r.long), Number(r.lat)], description: r.description || r.service_name });
      }
    }
  }

  const listOf = (body) => (Array.isArray(body) ? body : (body && (body.items || body.events || body.records)) || []);

  // ---- rendering --------------------------------------------------------------------------
  const t = (k) => i18n.t(k);
  const charts = {};
  const fmt = (v, digits = 1) => (v == null ? "–" : Number(v).toFixed(digits));

  function chart(id) {
    if (!charts[id]) {
      const node = document.getElementById(id);
      charts[id] = echarts.init(node, "dark", { renderer: "canvas" });
      new ResizeObserver(() => charts[id].resize()).observe(node);  // the layout may still move
    }
    return charts[id];
  }

  const HISTORY_SPAN_MS = 30 * 60 * 1000;
  const base = { backgroundColor: "transparent", grid: { left: 40, right: 12, top: 12, bottom: 24 },
    tooltip: { trigger: "axis" }, animation: false };

  // A chart is drawn only when its panel is on screen (other tabs draw theirs when opened).
  const shown = (id) => document.getElementById(id).offsetParent !== null;

  function renderCharts() {
    if (!window.echarts) return;
    if (shown("chart-congestion")) chart("chart-congestion").setOption(Object.assign({}, base, {
      // At least the last HISTORY_SPAN_MS: a few first points would otherwise stretch over days.
      xAxis: { type: "time", axisLabel: { hideOverlap: true }, max: "dataMax",
        min: (range) => Math.min(range.min, range.max - HISTORY_SPAN_MS) },
      yAxis: { type: "value", min: 0, max: 10 },
      visualMap: { show: false, pieces: [{ lte: 2, color: "#2ecc71" }, { gt: 2, lte: 4, color: "#a3d65c" },
        { gt: 4, lte: 6, color: "#f1c40f" }, { gt: 6, lte: 8, color: "#e67e22" }, { gt: 8, color: "#e74c3c" }] },
      series: [{ type: "line", showSymbol: state.history.length < 3, data: state.history, name: t("kpi.congestion") }] }), true);
    const stations = [...layers.stations.values()].sort((a, b) => a.id.localeCompare(b.id));
    if (shown("chart-air")) chart("chart-air").setOption(Object.assign({}, base, {
      xAxis: { type: "category", data: stations.map((s) => s.name || s.id.split(":").pop()) }, yAxis: { type: "value" },
      series: [{ type: "bar", name: "AQI", data: stations.map((s) => ({ value: s.aqi, itemStyle: { color: mapColours.aqiColour(s.aqi) } })) }] }), true);
    const meters = [...layers.meters.values()].sort((a, b) => a.id.localeCompare(b.id));
    if (shown("chart-energy")) chart("chart-energy").setOption(Object.assign({}, base, {
      xAxis: { type: "category", data: meters.map((m) => m.name || m.id.split(":").pop()) }, yAxis: { type: "value" },
      series: [{ type: "bar", name: "kW", data: meters.map((m) => m.power), itemStyle: { color: "#b07cff" } }] }), true);
    for (const [id, key] of [["chart-energy", "meters"], ["chart-air", "stations"]]) {
      const panel = document.getElementById(id).parentElement;
      panel.classList.toggle("denied", state.denied.includes(key));
      panel.querySelector("h2").dataset.denied = t("denied");
    }
  }

  function el(tag, text, cls) { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; }

  function table(id, head, rows, empty) {
    const node = document.getElementById(id);
    node.textContent = "";
    if (!rows.length) { const tr = el("tr"); tr.append(el("td", empty, "empty")); node.append(tr); return; }
    const tr = el("tr"); head.forEach((h) => tr.append(el("th", t(h)))); node.append(tr);
    for (const row of rows) { const r = el("tr"); row.forEach((c) => r.append(c instanceof Node ? wrap(c) : el("td", c))); node.append(r); }
  }
  const wrap = (node) => { const td = el("td"); td.append(node); return td; };

  function kpi(id, value) {  // a figure, or "not permitted" (small) when its layer is not
    const node = document.getElementById(id);
    node.textContent = value == null ? t("denied") : value;
    node.classList.toggle("muted", value == null);
  }

  function renderPanels() {
    const s = state.summary || {};
    const sensors = s.sensors;
    document.getElementById("kpi-congestion").textContent = fmt(s.congestion && s.congestion.index, 2);
    document.getElementById("kpi-aqi").textContent = fmt(s.airQuality && s.airQuality.meanAqi, 0);
    kpi("kpi-power", s.energy && fmt(s.energy.activePowerKw, 0));
    kpi("kpi-sensors", sensors && (sensors.reporting ? `${sensors.online}/${sensors.reporting}` : "–"));
    kpi("kpi-alerts", s.alerts && String(layers.alerts.size));
    const alerts = document.getElementById("alerts");
    alerts.textContent = "";
    const open = [...layers.alerts.values()].sort((a, b) => String(b.issued).localeCompare(String(a.issued)));
    if (!open.length) alerts.append(el("li", t(s.alerts ? "alerts.none" : "denied"), "empty"));
    for (const a of open) { const li = el("li"); li.append(el("span", t("sev." + a.severity), "sev " + a.severity), a.description || a.id); alerts.append(li); }
    const junctions = [...layers.signals.values()].sort((a, b) => String(a.name).localeCompare(String(b.name))).slice(0, 60);
    table("junctions", ["col.junction", "col.phase", "col.state"], junctions.map((j) => [j.name || j.id, String(j.phase), j.state || ""]), "–");
    const card = (s.scorecard || []).map((row) => {
      const status = row.met == null ? "na" : row.met ? "met" : "notMet";
      return [t("ind." + row.key), row.value == null ? "–" : `${row.value}${row.unit}`,
        `${row.better === "lower" ? "≤" : "≥"} ${row.target}${row.unit}`, el("span", t("status." + status), status.toLowerCase())];
    });
    table("scorecard", ["col.indicator", "col.value", "col.target", "col.status"], card, t("status.na"));
    if (state.audit == null) table("audit", [], [], t("audit.none"));
    else if (state.audit === "denied") table("audit", [], [], t("audit.denied"));
    else table("audit", ["col.time", "col.event", "col.detail"], state.audit.slice(0, 20).map((e) => [
      String(e.at || e.time || e.timestamp || e.createdAt || ""), String(e.action || e.event || e.type || ""),
      String(e.subject || e.actor || e.resource || e.detail || "")]), t("audit.empty"));
    const L = mapColours.LEVEL_COLOUR;
    const legend = document.getElementById("legend");
    legend.textContent = "";
    legend.append(el("span", t("legend.roads")));
    for (const level of Object.keys(L)) { const s = el("span"); const i = el("i"); i.style.background = L[level]; s.append(i, t("lvl." + level)); legend.append(s); }
    for (const [key, colour] of [["legend.junction", "#2ecc71"], ["legend.sensor", "#3fa7ff"], ["legend.air", "#f1c40f"], ["legend.alert", "#ff3b30"]]) {
      const s = el("span"); const b = el("b"); b.style.background = colour; s.append(b, t(key)); legend.append(s);
    }
    if (state.denied.length) {
      legend.append(el("span", `${t("denied")}: ${state.denied.map((k) => t("layer." + k)).join(", ")}`, "denied-note"));
    }
    if (!layers.roads.size && !state.denied.includes("roads")) legend.append(el("span", t("map.waiting"), "waiting-note"));
    const signin = document.getElementById("signin");
    const who = state.reader;
    signin.textContent = localStorage.getItem(TOKEN_KEY) && who ? `${who.subject} · ${t("auth.signout")}` : t("auth.signin");
    document.getElementById("reader").textContent = who && who.subject !== "local-operator" ? `${t("auth.kind." + who.kind)}${who.department ? " · " + who.department : ""}` : "";
  }

  function renderAll() { renderPanels(); renderCharts(); map.redraw(); }

  // ---- loading and live updates -----------------------------------------------------------
  const map = new DistrictMap(document.getElementById("map"), document.getElementById("tip"), layers);

  const scriptsReady = new Promise((resolve) => {
    if (document.readyState !== "loading") resolve(); else document.addEventListener("DOMContentLoaded", resolve);
  });

  async function loadAll() {
    await Promise.all([loadView().then(() => loadOptional()), scriptsReady]);
    renderAll();
    map.draw();
    if (!state.ready) {
      state.ready = true;
      state.readyMs = performance.now();
      performance.mark("cityhub-complete");
    }
  }

  let auditTimer = null;
  function refreshAuditSoon() {
    if (auditTimer || !state.features.audit) return;
    auditTimer = setTimeout(async () => { auditTimer = null; await loadOptional(); renderPanels(); }, 3000);
  }

  function applyRows(data) {
    for (const [key, part] of Object.entries(data.layers)) {
      if (!MAKE[key]) continue;
      fill(key, part.set, false);
      for (const id of part.removed) layers[key].delete(id);
    }
    for (const point of data.history) {
      const last = state.history[state.history.length - 1];
      if (last && last[0] === point[0]) last[1] = point[1]; else state.history.push(point);
      if (state.history.length > 600) state.history.shift();
    }
    state.summary = data.summary;
    state.updates += 1;
    state.lastUpdate = Date.now();
    renderPanels(); renderCharts(); map.redraw();
    refreshAuditSoon();
  }

  // Server-sent events read with fetch, so the stream carries the Authorization header too.
  function setLive(on) {
    const pill = document.getElementById("live");
    pill.className = on ? "pill on" : "pill off"; pill.dataset.i18n = on ? "live.on" : "live.off"; pill.textContent = t(pill.dataset.i18n);
  }

  function handle(block) {
    let event = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    if (event === "rows") applyRows(JSON.parse(data));
    else if (event === "reload") return loadAll();
    return null;
  }

  async function connect() {
    const stop = new AbortController();
    window.addEventListener("beforeunload", () => stop.abort());
    for (;;) {
      try {
        const answer = await fetch("/ops/events", { headers: headers(), signal: stop.signal });
        if (answer.status === 401 && localStorage.getItem(TOKEN_KEY)) {  // the token expired
          localStorage.removeItem(TOKEN_KEY); location.reload(); return;
        }
        if (!answer.ok || !answer.body) throw new Error(`/ops/events: HTTP ${answer.status}`);
        setLive(true);
        const reader = answer.body.getReader(), decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
            try { await handle(block); } catch (error) { state.errors.push(String(error)); }
          }
        }
      } catch (error) {
        if (stop.signal.aborted) return;
        state.errors.push(String(error));
      }
      setLive(false);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  // ---- controls ---------------------------------------------------------------------------
  document.getElementById("tabs").addEventListener("click", (event) => {
    const view = event.target.dataset && event.target.dataset.view;
    if (!view) return;
    document.body.dataset.view = view;
    document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
    requestAnimationFrame(() => { renderCharts(); Object.values(charts).forEach((c) => c.resize()); map.redraw(); });
  });
  document.getElementById("lang").addEventListener("click", () => i18n.set(i18n.lang === "zh" ? "en" : "zh"));
  i18n.onChange(() => renderAll());

  const dialog = document.getElementById("login");
  const form = document.getElementById("login-form");
  document.getElementById("signin").addEventListener("click", () => {
    if (localStorage.getItem(TOKEN_KEY)) { localStorage.removeItem(TOKEN_KEY); location.reload(); return; }
    document.getElementById("login-password").hidden = !state.features.login;
    document.getElementById("login-error").textContent = "";
    dialog.showModal();
  });
  form.addEventListener("submit", async (event) => {
    if (event.submitter && event.submitter.value === "cancel") return;  // the dialog closes
    event.preventDefault();
    let token = form.token.value.trim();
    if (!token && state.features.login && form.username.value) {
      const answer = await fetch(state.features.login, { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ username: form.username.value, password: form.password.value, purpose: form.purpose.value.trim() || undefined }) });
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) { document.getElementById("login-error").textContent = t("auth.failed"); form.password.value = ""; return; }
      token = body.access_token || "";
    }
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    location.reload();
  });

  i18n.apply();
  loadAll().catch((error) => { state.errors.push(String(error)); document.getElementById("live").textContent = t("error.load"); });
  connect();
})();
