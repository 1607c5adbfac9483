// The operations page: reads the district through the hub's NGSI-LD API (keyValues, picked
// attributes, paged), the summary from /ops/summary, the congestion history from the temporal
// API, and applies the changes named by the /ops/events stream. Every request carries the
// user's bearer token when one is set, so what the page shows follows the hub's access rules.
"use strict";
(function () {
  const NGSI = "/ngsi-ld/v1";
  const PAGE = 1000;
  const TOKEN_KEY = "cityhub.token";
  const layers = { roads: new Map(), signals: new Map(), sensors: new Map(), stations: new Map(),
    meters: new Map(), alerts: new Map(), indices: new Map(), requests: new Map() };
  // PM2.5 IAQI (HJ 633-2012) for stations without airQualityIndex; the same table as web/aqi.py
  const PM25 = [[0, 0], [35, 50], [75, 100], [115, 150], [150, 200], [250, 300], [350, 400], [500, 500]];
  const pm25Aqi = (c) => {
    if (typeof c !== "number") return undefined;
    if (c <= 0) return 0;
    for (let i = 1; i < PM25.length; i++) {
      const [c0, a0] = PM25[i - 1], [c1, a1] = PM25[i];
      if (c <= c1) return Math.round((a0 + (a1 - a0) * (c - c0) / (c1 - c0)) * 10) / 10;
    }
    return 500;
  };
  const point = (e) => (e.location && e.location.type === "Point" ? e.location.coordinates : null);
  const LAYERS = {
    RoadSegment: { into: "roads", pick: "id,name,location,congestionLevel,congestionIndex,averageSpeed",
      make: (e) => (e.location && e.location.type === "LineString" ? { id: e.id, name: e.name, line: e.location.coordinates,
        level: e.congestionLevel, index: e.congestionIndex, speed: e.averageSpeed } : null) },
    TrafficSignal: { into: "signals", pick: "id,name,location,currentPhase,phaseState",
      make: (e) => point(e) && { id: e.id, name: e.name, at: point(e), phase: e.currentPhase, state: e.phaseState } },
    Device: { into: "sensors", pick: "id,location,deviceState",
      make: (e) => point(e) && { id: e.id, at: point(e), state: e.deviceState } },
    AirQualityObserved: { into: "stations", pick: "id,name,location,airQualityIndex,airQualityLevel,pm25",
      make: (e) => point(e) && { id: e.id, name: e.name, at: point(e), aqi: e.airQualityIndex ?? pm25Aqi(e.pm25), level: e.airQualityLevel } },
    EnergyMeter: { into: "meters", pick: "id,name,location,activePower",
      make: (e) => point(e) && { id: e.id, name: e.name, at: point(e), power: e.activePower } },
    Alert: { into: "alerts", pick: "id,location,severity,description,category,status,dateIssued", q: 'status=="open"',
      make: (e) => point(e) && { id: e.id, at: point(e), severity: e.severity, description: e.description,
        category: e.category, issued: e.dateIssued } },
    CongestionIndex: { into: "indices", pick: "id,congestionIndex,congestionLevel",
      make: (e) => ({ id: e.id, index: e.congestionIndex, level: e.congestionLevel }) },
  };
  const state = { ready: false, readyMs: null, updates: 0, lastUpdate: null, summary: null, denied: [],
    history: [], layers, errors: [] };
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

  function query(type, extra) {
    const spec = LAYERS[type];
    const p = new URLSearchParams({ type, pick: spec.pick, options: "keyValues" });
    if (spec.q) p.set("q", spec.q);
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    return `${NGSI}/entities?${p}`;
  }

  // All pages of a type at once when its count is known (from /ops/summary), else page by page.
  async function loadType(type, known) {
    const pages = [];
    if (known == null) {
      const first = await api(query(type, { limit: PAGE, count: "true" }));
      if (first.denied) { state.denied.push(type); return; }
      known = Number(first.answer.headers.get("NGSILD-Results-Count") || first.body.length);
      pages.push(first);
    }
    const requests = [];
    for (let offset = pages.length * PAGE; offset < Math.max(known, 1); offset += PAGE) requests.push(api(query(type, { limit: PAGE, offset })));
    pages.push(...await Promise.all(requests));
    // More entities than counted a moment ago: keep paging until a page comes back short.
    while (!pages[pages.length - 1].denied && pages[pages.length - 1].body.length === PAGE) {
      pages.push(await api(query(type, { limit: PAGE, offset: pages.length * PAGE })));
    }
    if (pages.some((p) => p.denied)) state.denied.push(type);
    const target = layers[LAYERS[type].into];
    target.clear();
    for (const page of pages) for (const e of page.body || []) { const item = LAYERS[type].make(e); if (item) target.set(item.id, item); }
  }

  async function refreshIds(type, ids) {
    const target = layers[LAYERS[type].into];
    const list = [...ids];
    for (let i = 0; i < list.length; i += 50) {
      const chunk = list.slice(i, i + 50);
      const page = await api(query(type, { id: chunk.join(","), limit: PAGE }));
      if (page.denied) continue;
      const seen = new Set();
      for (const e of page.body) { const item = LAYERS[type].make(e); if (item) { target.set(item.id, item); seen.add(item.id); } }
      for (const id of chunk) if (!seen.has(id)) target.delete(id);  // deleted, closed or no longer visible
    }
  }

  async function loadHistory(cityId) {
    if (!cityId) return;
    const p = new URLSearchParams({ attrs: "congestionIndex", options: "temporalValues", lastN: "240" });
    const res = await api(`${NGSI}/temporal/entities/${encodeURIComponent(cityId)}?${p}`);
    const values = (!res.denied && res.body.congestionIndex && res.body.congestionIndex.values) || [];
    state.history = values.map(([v, t]) => [t, v]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  async function loadSummary() {
    const res = await api("/ops/summary");
    if (!res.denied) state.summary = res.body;
  }

  async function loadOptional() {
    const f = (state.summary && state.summary.features) || {};
    state.audit = null;
    if (f.audit) { const res = await api(f.audit); state.audit = res.denied ? [] : listOf(res.body); }
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
    if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), "dark", { renderer: "canvas" });
    return charts[id];
  }

  const base = { backgroundColor: "transparent", grid: { left: 40, right: 12, top: 12, bottom: 24 },
    tooltip: { trigger: "axis" }, animation: false };

  function renderCharts() {
    if (!window.echarts) return;
    chart("chart-congestion").setOption(Object.assign({}, base, {
      xAxis: { type: "time", axisLabel: { hideOverlap: true } }, yAxis: { type: "value", min: 0, max: 10 },
      visualMap: { show: false, pieces: [{ lte: 2, color: "#2ecc71" }, { gt: 2, lte: 4, color: "#a3d65c" },
        { gt: 4, lte: 6, color: "#f1c40f" }, { gt: 6, lte: 8, color: "#e67e22" }, { gt: 8, color: "#e74c3c" }] },
      series: [{ type: "line", showSymbol: false, data: state.history, name: t("kpi.congestion") }] }), true);
    const stations = [...layers.stations.values()].sort((a, b) => a.id.localeCompare(b.id));
    chart("chart-air").setOption(Object.assign({}, base, {
      xAxis: { type: "category", data: stations.map((s) => s.name || s.id.split(":").pop()) }, yAxis: { type: "value" },
      series: [{ type: "bar", name: "AQI", data: stations.map((s) => ({ value: s.aqi, itemStyle: { color: mapColours.aqiColour(s.aqi) } })) }] }), true);
    const meters = [...layers.meters.values()].sort((a, b) => a.id.localeCompare(b.id));
    chart("chart-energy").setOption(Object.assign({}, base, {
      xAxis: { type: "category", data: meters.map((m) => m.name || m.id.split(":").pop()) }, yAxis: { type: "value" },
      series: [{ type: "bar", name: "kW", data: meters.map((m) => m.power), itemStyle: { color: "#b07cff" } }] }), true);
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

  function renderPanels() {
    const s = state.summary || {};
    const reporting = layers.sensors.size;
    let ok = 0;
    for (const d of layers.sensors.values()) if (d.state === "ok") ok += 1;
    document.getElementById("kpi-congestion").textContent = fmt(s.congestion && s.congestion.index, 2);
    document.getElementById("kpi-aqi").textContent = fmt(s.airQuality && s.airQuality.meanAqi, 0);
    document.getElementById("kpi-power").textContent = fmt(s.energy && s.energy.activePowerKw, 0);
    document.getElementById("kpi-sensors").textContent = reporting ? `${ok}/${reporting}` : "–";
    document.getElementById("kpi-alerts").textContent = layers.alerts.size;
    const alerts = document.getElementById("alerts");
    alerts.textContent = "";
    const open = [...layers.alerts.values()].sort((a, b) => String(b.issued).localeCompare(String(a.issued)));
    if (!open.length) alerts.append(el("li", t("alerts.none"), "empty"));
    for (const a of open) { const li = el("li"); li.append(el("span", t("sev." + a.severity), "sev " + a.severity), a.description || a.id); alerts.append(li); }
    const junctions = [...layers.signals.values()].sort((a, b) => String(a.name).localeCompare(String(b.name))).slice(0, 60);
    table("junctions", ["col.junction", "col.phase", "col.state"], junctions.map((j) => [j.name || j.id, String(j.phase), j.state || ""]), "–");
    const card = (s.scorecard || []).map((given) => {
      const row = given.measuredBy === "page" ? pageMeasured(given, reporting ? Math.round(1000 * ok / reporting) / 10 : null) : given;
      const status = row.met == null ? "na" : row.met ? "met" : "notMet";
      return [t("ind." + row.key), row.value == null ? "–" : `${row.value}${row.unit}`,
        `${row.better === "lower" ? "≤" : "≥"} ${row.target}${row.unit}`, el("span", t("status." + status), status.toLowerCase())];
    });
    table("scorecard", ["col.indicator", "col.value", "col.target", "col.status"], card, t("status.na"));
    if (state.audit == null) table("audit", [], [], t("audit.none"));
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
    const signin = document.getElementById("signin");
    signin.textContent = localStorage.getItem(TOKEN_KEY) ? t("auth.as") : t("auth.signin");
  }

  function pageMeasured(row, value) {
    const met = value == null ? null : row.better === "lower" ? value <= row.target : value >= row.target;
    return Object.assign({}, row, { value, met });
  }

  function renderAll() { map.redraw(); renderCharts(); renderPanels(); }

  // ---- loading and live updates -----------------------------------------------------------
  const map = new DistrictMap(document.getElementById("map"), document.getElementById("tip"), layers);

  const scriptsReady = new Promise((resolve) => {
    if (document.readyState !== "loading") resolve(); else document.addEventListener("DOMContentLoaded", resolve);
  });

  async function loadAll() {
    state.denied = [];
    await loadSummary();
    const s = state.summary || {};
    const counts = s.counts || {};
    await Promise.all([...Object.keys(LAYERS).map((type) => loadType(type, type === "CongestionIndex" ? 1 : counts[type])),
      loadHistory(s.congestion && s.congestion.id), loadOptional()]);
    await scriptsReady;
    renderAll();
    map.draw();
    if (!state.ready) {
      state.ready = true;
      state.readyMs = performance.now();
      performance.mark("cityhub-complete");
    }
  }

  let summaryTimer = null;
  function refreshSummarySoon() {
    if (summaryTimer) return;
    summaryTimer = setTimeout(async () => { summaryTimer = null; await loadSummary(); await loadOptional(); renderPanels(); }, 1500);
  }

  async function applyChanges(changes) {
    const byType = {};
    for (const c of changes) if (LAYERS[c.type]) (byType[c.type] = byType[c.type] || new Set()).add(c.id);
    await Promise.all(Object.entries(byType).map(([type, ids]) => refreshIds(type, ids)));
    if (byType.CongestionIndex) {
      const city = [...layers.indices.values()].find((c) => c.id.endsWith(":city"));
      if (city && city.index != null) { state.history.push([new Date().toISOString(), city.index]); if (state.history.length > 600) state.history.shift(); }
    }
    state.updates += 1;
    state.lastUpdate = Date.now();
    map.redraw(); renderCharts(); renderPanels();
    refreshSummarySoon();
  }

  function connect() {
    const token = localStorage.getItem(TOKEN_KEY);
    const source = new EventSource("/ops/events" + (token ? "?access_token=" + encodeURIComponent(token) : ""));
    const pill = document.getElementById("live");
    source.onopen = () => { pill.className = "pill on"; pill.dataset.i18n = "live.on"; pill.textContent = t("live.on"); };
    source.onerror = () => { pill.className = "pill off"; pill.dataset.i18n = "live.off"; pill.textContent = t("live.off"); };
    let chain = Promise.resolve();
    source.addEventListener("changes", (event) => {
      const { changes } = JSON.parse(event.data);
      chain = chain.then(() => applyChanges(changes)).catch((error) => state.errors.push(String(error)));
    });
    source.addEventListener("reload", () => { chain = chain.then(loadAll); });
    window.addEventListener("beforeunload", () => source.close());
  }

  // ---- controls ---------------------------------------------------------------------------
  document.getElementById("tabs").addEventListener("click", (event) => {
    const view = event.target.dataset && event.target.dataset.view;
    if (!view) return;
    document.body.dataset.view = view;
    document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
    requestAnimationFrame(() => { Object.values(charts).forEach((c) => c.resize()); map.redraw(); });
  });
  document.getElementById("lang").addEventListener("click", () => i18n.set(i18n.lang === "zh" ? "en" : "zh"));
  i18n.onChange(() => renderAll());

  const dialog = document.getElementById("login");
  document.getElementById("signin").addEventListener("click", () => {
    const f = (state.summary && state.summary.features) || {};
    document.getElementById("login-password").hidden = !f.login;
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    const form = document.getElementById("login-form");
    if (dialog.returnValue === "signout") localStorage.removeItem(TOKEN_KEY);
    else if (dialog.returnValue === "ok") {
      const f = (state.summary && state.summary.features) || {};
      let token = form.token.value.trim();
      if (!token && f.login && form.username.value) {
        const res = await api(f.login, { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username: form.username.value, password: form.password.value }) });
        token = (res.body && (res.body.access_token || res.body.token)) || "";
      }
      if (token) localStorage.setItem(TOKEN_KEY, token);
    } else return;
    location.reload();
  });

  i18n.apply();
  loadAll().catch((error) => { state.errors.push(String(error)); document.getElementById("live").textContent = t("error.load"); });
  connect();
})();
