// The district map on a canvas: the road network itself is the base map (no tiles).
// Roads coloured by congestion level, junctions by signal state, sensors by device state,
// air stations by AQI, alerts and citizen requests as markers. Drag to pan, wheel to zoom.
"use strict";
(function () {
  const LEVEL_COLOUR = { smooth: "#2ecc71", basicallySmooth: "#a3d65c", light: "#f1c40f",
    moderate: "#e67e22", severe: "#e74c3c" };
  const DEVICE_COLOUR = { ok: "#3fa7ff", silent: "#8a97a6", faulty: "#ff4d4f", revoked: "#555f6b" };
  const SIGNAL_COLOUR = { G: "#2ecc71", g: "#2ecc71", y: "#f1c40f", Y: "#f1c40f", r: "#e74c3c", R: "#e74c3c" };

  function aqiColour(aqi) {
    if (aqi <= 50) return "#2ecc71"; if (aqi <= 100) return "#f1c40f"; if (aqi <= 150) return "#e67e22";
    if (aqi <= 200) return "#e74c3c"; return "#8e44ad";
  }

  class DistrictMap {
    constructor(canvas, tip, layers) {
      this.canvas = canvas; this.tip = tip; this.layers = layers;
      this.view = null; this.pending = false; this.drawn = 0;
      this.dragging = null;
      canvas.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.offsetX, e.offsetY, e.deltaY < 0 ? 1.25 : 0.8); }, { passive: false });
      canvas.addEventListener("mousedown", (e) => { this.dragging = [e.offsetX, e.offsetY]; canvas.style.cursor = "grabbing"; });
      window.addEventListener("mouseup", () => { this.dragging = null; canvas.style.cursor = "grab"; });
      canvas.addEventListener("mousemove", (e) => this.move(e));
      canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
      canvas.addEventListener("dblclick", () => { this.view = null; this.redraw(); });
      new ResizeObserver(() => this.redraw()).observe(canvas);
    }

    bounds() {
      let w = Infinity, s = Infinity, e = -Infinity, n = -Infinity;
      const add = (p) => { if (p[0] < w) w = p[0]; if (p[0] > e) e = p[0]; if (p[1] < s) s = p[1]; if (p[1] > n) n = p[1]; };
      for (const r of this.layers.roads.values()) r.line.forEach(add);
      if (!isFinite(w)) for (const d of this.layers.sensors.values()) add(d.at);
      for (const j of this.layers.signals.values()) add(j.at);
      return isFinite(w) ? [w, s, e, n] : [121.46, 31.22, 121.49, 31.24];
    }

    fit(width, height) {
      const [w, s, e, n] = this.bounds();
      const kx = Math.cos(((s + n) / 2) * Math.PI / 180);
      const scale = Math.min((width - 40) / Math.max((e - w) * kx, 1e-6), (height - 40) / Math.max(n - s, 1e-6));
      return { cx: (w + e) / 2, cy: (s + n) / 2, kx, scale };
    }

    project(p) {
      const v = this.view;
      return [this.width / 2 + (p[0] - v.cx) * v.kx * v.scale, this.height / 2 - (p[1] - v.cy) * v.scale];
    }

    zoom(x, y, factor) {
      const v = this.view; if (!v) return;
      const lon = v.cx + (x - this.width / 2) / (v.kx * v.scale), lat = v.cy - (y - this.height / 2) / v.scale;
      v.scale *= factor; v.moved = true;
      v.cx = lon - (x - this.width / 2) / (v.kx * v.scale); v.cy = lat + (y - this.height / 2) / v.scale;
      this.redraw();
    }

    move(e) {
      if (this.dragging && this.view) {
        const [x0, y0] = this.dragging; this.dragging = [e.offsetX, e.offsetY];
        this.view.cx -= (e.offsetX - x0) / (this.view.kx * this.view.scale);
        this.view.cy += (e.offsetY - y0) / this.view.scale; this.view.moved = true;
        this.redraw(); return;
      }
      const hit = this.hit(e.offsetX, e.offsetY);
      if (!hit) { this.tip.hidden = true; return; }
      this.tip.hidden = false;
      this.tip.style.left = (e.offsetX + 14) + "px"; this.tip.style.top = (e.offsetY + 10) + "px";
      this.tip.textContent = "";
      const head = document.createElement("b"); head.textContent = i18n.t("type." + hit.type) + " · " + (hit.name || hit.id.split(":").pop());
      this.tip.append(head);
      for (const line of hit.lines) { const d = document.createElement("div"); d.textContent = line; this.tip.append(d); }
    }

    hit(x, y) {
      if (!this.view) return null;
      let best = null, bestD = 64;
      const consider = (item, type, at, lines) => {
        if (!at) return;  // charted but not placed on the map
        const [px, py] = this.project(at); const d = (px - x) ** 2 + (py - y) ** 2;
        if (d < bestD) { bestD = d; best = { id: item.id, name: item.name, type, lines }; }
      };
      const L = this.layers;
      for (const a of L.alerts.values()) consider(a, "Alert", a.at, [i18n.t("sev." + a.severity), a.description || ""]);
      for (const j of L.signals.values()) consider(j, "TrafficSignal", j.at, [`${i18n.t("col.phase")} ${j.phase} · ${j.state || ""}`]);
      for (const s of L.stations.values()) consider(s, "AirQualityObserved", s.at, [`AQI ${s.aqi}`]);
      for (const m of L.requests.values()) consider(m, "ServiceRequest", m.at, [m.description || ""]);
      for (const d of L.sensors.values()) consider(d, "Device", d.at, [i18n.t("dev." + d.state)]);
      if (best) return best;
      for (const r of L.roads.values()) {
        for (let i = 1; i < r.line.length; i++) {
          if (segmentDistance(this.project(r.line[i - 1]), this.project(r.line[i]), [x, y]) < 6) {
            return { id: r.id, name: r.name, type: "RoadSegment",
              lines: [`${i18n.t("lvl." + r.level)} · ${r.index ?? "–"} · ${r.speed ?? "–"} km/h`] };
          }
        }
      }
      return null;
    }

    redraw() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    }

    draw() {
      const c = this.canvas, ratio = window.devicePixelRatio || 1;
      this.width = c.clientWidth; this.height = c.clientHeight;
      if (!this.width || !this.height) return;
      if (c.width !== this.width * ratio) { c.width = this.width * ratio; c.height = this.height * ratio; }
      // Fit the network to the canvas until the user pans or zooms (layout and data may still
      // be arriving).
      const shape = `${this.width}x${this.height}:${this.layers.roads.size}:${this.layers.signals.size}`;
      if (!this.view || (!this.view.moved && this.view.shape !== shape)) {
        this.view = Object.assign(this.fit(this.width, this.height), { shape });
      }
      const g = c.getContext("2d");
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.fillStyle = "#0c141c"; g.fillRect(0, 0, this.width, this.height);
      const L = this.layers;
      g.lineCap = "round"; g.lineJoin = "round";
      g.strokeStyle = "#1e2c3a"; g.lineWidth = 9;
      for (const r of L.roads.values()) this.path(g, r.line);
      g.lineWidth = 4;
      for (const r of L.roads.values()) { g.strokeStyle = LEVEL_COLOUR[r.level] || "#5b6b7b"; this.path(g, r.line); }
      for (const d of L.sensors.values()) {
        const [x, y] = this.project(d.at); g.fillStyle = DEVICE_COLOUR[d.state] || "#8a97a6"; g.fillRect(x - 2, y - 2, 4, 4);
      }
      for (const m of L.meters.values()) {
        if (!m.at) continue;
        const [x, y] = this.project(m.at); g.fillStyle = "#b07cff"; g.fillRect(x - 4, y - 4, 8, 8);
      }
      for (const s of L.stations.values()) {
        if (!s.at) continue;
        const [x, y] = this.project(s.at); g.fillStyle = aqiColour(s.aqi);
        g.beginPath(); g.moveTo(x, y - 7); g.lineTo(x + 7, y); g.lineTo(x, y + 7); g.lineTo(x - 7, y); g.closePath(); g.fill();
        g.strokeStyle = "#0c141c"; g.lineWidth = 1.5; g.stroke();
      }
      for (const j of L.signals.values()) {
        const [x, y] = this.project(j.at);
        g.fillStyle = "#0c141c"; g.beginPath(); g.arc(x, y, 7, 0, 2 * Math.PI); g.fill();
        g.fillStyle = SIGNAL_COLOUR[(j.state || "r")[0]] || "#8a97a6"; g.beginPath(); g.arc(x, y, 5, 0, 2 * Math.PI); g.fill();
      }
      for (const q of L.requests.values()) {
        const [x, y] = this.project(q.at); g.strokeStyle = "#7fd3ff"; g.lineWidth = 2; g.beginPath(); g.arc(x, y, 6, 0, 2 * Math.PI); g.stroke();
      }
      for (const a of L.alerts.values()) {
        const [x, y] = this.project(a.at);
        g.fillStyle = a.severity === "high" || a.severity === "critical" ? "#ff3b30" : "#ff9f0a";
        g.beginPath(); g.moveTo(x, y - 10); g.lineTo(x + 8, y + 5); g.lineTo(x - 8, y + 5); g.closePath(); g.fill();
        g.fillStyle = "#fff"; g.font = "bold 10px sans-serif"; g.textAlign = "center"; g.fillText("!", x, y + 3);
      }
      this.drawn += 1;
      c.dataset.drawn = String(this.drawn);
      c.dataset.roads = String(L.roads.size);
    }

    path(g, line) {
      g.beginPath();
      line.forEach((p, i) => { const [x, y] = this.project(p); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
      g.stroke();
    }
  }

  function segmentDistance(a, b, p) {
    const dx = b[0] - a[0], dy = b[1] - a[1], len = dx * dx + dy * dy;
    const t = len ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len)) : 0;
    return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
  }

  window.DistrictMap = DistrictMap;
  window.mapColours = { LEVEL_COLOUR, DEVICE_COLOUR, aqiColour };
})();
