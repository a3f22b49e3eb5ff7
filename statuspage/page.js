// pgqgo status page: refreshes the tables (server-rendered, from "fragment")
// and draws the charts (from "api/status?history=1") every two seconds.
// Names from the database are set as text, never parsed as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3182ce", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#e53e3e"];
const W = 600, H = 180, L = 44, R = 8, T = 8, B = 20;

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  if (v >= 10) return v.toFixed(0);
  return v.toFixed(1);
}

function clock(t) {
  return t.toTimeString().slice(0, 8);
}

// chart draws lines [{name, points: [{t, v}]}] into an svg element.
function chart(title, unit, lines) {
  const fig = el("figure", {"class": "chart-figure", "data-title": title});
  fig.appendChild(el("figcaption", {}, title));
  const svg = el("svg:svg", {"class": "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": title});
  let t0 = Infinity, t1 = -Infinity, vmax = 0;
  for (const l of lines) {
    for (const p of l.points) {
      const t = Date.parse(p.t);
      t0 = Math.min(t0, t); t1 = Math.max(t1, t); vmax = Math.max(vmax, p.v);
    }
  }
  if (!isFinite(t0)) { t0 = Date.now() - 60000; t1 = Date.now(); }
  if (t1 - t0 < 10000) t0 = t1 - 10000;
  vmax = vmax > 0 ? vmax * 1.1 : 1;
  const x = t => L + (W - L - R) * (t - t0) / (t1 - t0);
  const y = v => H - B - (H - B - T) * v / vmax;
  // axes: frame, the top and bottom values, the first and last times
  svg.appendChild(el("svg:line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#cbd5e0"}));
  svg.appendChild(el("svg:line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#cbd5e0"}));
  svg.appendChild(el("svg:text", {x: L - 4, y: T + 8, "text-anchor": "end"}, fmt(vmax) + unit));
  svg.appendChild(el("svg:text", {x: L - 4, y: H - B, "text-anchor": "end"}, "0"));
  svg.appendChild(el("svg:text", {x: L, y: H - 4}, clock(new Date(t0))));
  svg.appendChild(el("svg:text", {x: W - R, y: H - 4, "text-anchor": "end"}, clock(new Date(t1))));
  const legend = el("div", {"class": "legend"});
  lines.forEach((l, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = l.points.map(p => `${x(Date.parse(p.t)).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
    svg.appendChild(el("svg:polyline", {"class": "line", "data-series": l.name, points: pts, fill: "none",
      stroke: color, "stroke-width": 1.5, "vector-effect": "non-scaling-stroke"}));
    const item = el("span");
    item.appendChild(el("i", {style: `background:${color}`}));
    item.appendChild(document.createTextNode(l.name));
    legend.appendChild(item);
  });
  fig.appendChild(svg);
  fig.appendChild(legend);
  return fig;
}

function drawCharts(history) {
  const byQueue = new Map();
  for (const s of history || []) {
    const key = s.database + "\u0000" + s.queue;
    if (!byQueue.has(key)) byQueue.set(key, {database: s.database, queue: s.queue, series: []});
    byQueue.get(key).series.push(s);
  }
  const root = document.getElementById("charts");
  const out = document.createDocumentFragment();
  for (const q of byQueue.values()) {
    const box = el("div", {"class": "queue", "data-database": q.database, "data-queue": q.queue});
    const name = (s) => s.consumer === "" ? "in" : s.consumer;
    const rates = q.series.filter(s => s.metric === "events_in" || s.metric === "events_out")
      .map(s => ({name: s.metric === "events_in" ? "in" : "out: " + s.consumer, points: s.points}));
    const lags = q.series.filter(s => s.metric === "lag_seconds").map(s => ({name: name(s), points: s.points}));
    box.appendChild(chart(`${q.database} / ${q.queue}: events per second`, "/s", rates));
    if (lags.length > 0) {
      box.appendChild(chart(`${q.database} / ${q.queue}: consumer lag`, "s", lags));
    } else {
      const fig = el("figure", {"class": "chart-figure"});
      fig.appendChild(el("figcaption", {}, `${q.database} / ${q.queue}: no consumers`));
      box.appendChild(fig);
    }
    out.appendChild(el("h3", {}, `${q.database} / ${q.queue}`));
    out.appendChild(box);
  }
  root.replaceChildren(out);
}

async function refresh() {
  try {
    const [frag, data] = await Promise.all([
      fetch("fragment", {cache: "no-store"}),
      fetch("api/status?history=1", {cache: "no-store"}),
    ]);
    if (frag.ok) document.getElementById("live").innerHTML = await frag.text(); // escaped by the server's templates
    if (data.ok) {
      const st = await data.json();
      document.getElementById("updated").textContent = "sampled " + clock(new Date(st.time));
      drawCharts(st.history);
    }
  } catch (e) {
    document.getElementById("updated").textContent = "not updating: " + e;
  }
}

refresh();
setInterval(refresh, 2000);
