// meshpulse catalog: a small single-page app over /api/. No framework, no
// build step: uPlot draws the score history, Cytoscape.js with the dagre
// layout the lineage graphs; everything else is the DOM.
"use strict";

const main = document.getElementById("main");
const BANDS = { healthy: 75, degraded: 50 }; // the default policy's band thresholds
let page = null; // what the current page shows, for live updates

// ---- helpers ---------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

const short = (urn) => urn.replace(/^urn:mesh:(product|dataset|job):/, "");
const fmt = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(1));
const when = (ms) => new Date(ms).toLocaleString();
const productHref = (urn) => "#/product/" + encodeURIComponent(urn);
const datasetHref = (urn) => "#/dataset/" + encodeURIComponent(urn);
const band = (b) => h("span", { class: "band " + (b || "unknown") }, b || "unknown");
const bandColor = (b) => ({ healthy: "#1a7f37", degraded: "#9a6700", critical: "#cf222e" })[b] || "#57606a";

function sparkline(points) {
  const w = 120, hgt = 24;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", hgt);
  svg.setAttribute("role", "img");
  if (!points.length) {
    svg.setAttribute("aria-label", "no trust history in the last 7 days");
    return svg;
  }
  const t0 = points[0][0], t1 = points[points.length - 1][0] || t0 + 1;
  const x = (t) => (t1 === t0 ? w : ((t - t0) / (t1 - t0)) * (w - 2) + 1);
  const y = (v) => hgt - 1 - (v / 100) * (hgt - 2);
  const d = points.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1)).join(" ");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", points.length === 1 ? `M0 ${y(points[0][1])} L${w} ${y(points[0][1])}` : d);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "#0969da");
  path.setAttribute("stroke-width", "1.5");
  svg.append(path);
  const last = points[points.length - 1][1];
  svg.setAttribute("aria-label", `trust over 7 days, ${points.length} points, now ${last.toFixed(1)}`);
  return svg;
}

// At most three toasts at once: in an incident, the newest matter and the
// page beneath must stay readable.
function toast(text) {
  const box = document.getElementById("toasts");
  const t = h("div", { class: "toast" }, text);
  box.append(t);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => t.remove(), 8000);
}

// ---- search ---------------------------------------------------------------

const q = document.getElementById("q");
const results = document.getElementById("results");
let searchTimer = null, searchSeq = 0, selected = -1;

function closeResults() {
  results.hidden = true;
  q.setAttribute("aria-expanded", "false");
  q.removeAttribute("aria-activedescendant");
  selected = -1;
}

function select(i) {
  const items = [...results.children];
  items.forEach((li, k) => li.setAttribute("aria-selected", k === i ? "true" : "false"));
  selected = i;
  if (items[i]) {
    q.setAttribute("aria-activedescendant", items[i].id);
    items[i].scrollIntoView({ block: "nearest" });
  }
}

async function runSearch() {
  const text = q.value.trim();
  const seq = ++searchSeq;
  if (!text) return closeResults();
  const { hits } = await api("/api/search?q=" + encodeURIComponent(text) + "&limit=10");
  if (seq !== searchSeq) return; // a newer query is on its way
  results.replaceChildren(...hits.map((hit, i) =>
    h("li", { id: "hit-" + i, role: "option", "aria-selected": "false", "data-urn": hit.urn, "data-kind": hit.kind,
              onmousedown: (e) => { e.preventDefault(); go(hit); } },
      h("span", { class: "kind" }, hit.kind), h("strong", {}, hit.kind === "product" ? short(hit.urn) : hit.name), " ",
      hit.kind === "product" && hit.trust_band ? band(hit.trust_band) : null, " ",
      h("span", { class: "muted" }, hit.kind === "dataset" ? short(hit.urn) : (hit.description || "")))));
  if (!hits.length) results.replaceChildren(h("li", { role: "option", "aria-disabled": "true" }, "No match"));
  results.hidden = false;
  q.setAttribute("aria-expanded", "true");
  select(hits.length ? 0 : -1);
}

function go(hit) {
  closeResults();
  location.hash = hit.kind === "product" ? productHref(hit.urn) : datasetHref(hit.urn);
}

q.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 120); });
q.addEventListener("keydown", (e) => {
  const items = [...results.children].filter((li) => li.dataset.urn);
  if (e.key === "ArrowDown") { e.preventDefault(); if (results.hidden) runSearch(); else select(Math.min(selected + 1, items.length - 1)); }
  else if (e.key === "ArrowUp") { e.preventDefault(); select(Math.max(selected - 1, 0)); }
  else if (e.key === "Enter" && items[selected]) { e.preventDefault(); go({ urn: items[selected].dataset.urn, kind: items[selected].dataset.kind }); }
  else if (e.key === "Escape") closeResults();
});
q.addEventListener("blur", () => setTimeout(closeResults, 150));

// ---- mesh ----------------------------------------------------------------

async function meshPage(params) {
  const domain = params.get("domain") || "", bandFilter = params.get("band") || "";
  const offset = Number(params.get("offset") || 0), limit = 100;
  const data = await api(`/api/mesh?domain=${encodeURIComponent(domain)}&band=${encodeURIComponent(bandFilter)}&offset=${offset}&limit=${limit}`);
  const domains = Object.keys(data.domains).sort();
  const setParam = (k, v) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v); else p.delete(k);
    p.delete("offset");
    location.hash = "#/?" + p.toString();
  };
  const rows = data.rows.map((r) => {
    const tr = h("tr", { "data-urn": r.urn },
      h("td", {}, h("a", { href: productHref(r.urn) }, r.name || short(r.urn)), h("div", { class: "muted" }, short(r.urn))),
      h("td", {}, r.domain),
      h("td", { class: "health" }, band(r.score.health_band), " ", h("span", { class: "num" }, fmt(r.score.health))),
      h("td", { class: "trust" }, band(r.score.trust_band), " ", h("span", { class: "num" }, fmt(r.score.trust))),
      h("td", {}, sparkline(r.sparkline)),
      h("td", { class: "muted cause" }, r.score.cause || ""));
    return tr;
  });
  main.replaceChildren(
    h("h1", {}, "The mesh"),
    h("p", { class: "muted" }, `${data.total} products, worst first: the worse of health and trust, then trust.`),
    h("div", { class: "domains", "aria-label": "Domains" }, domains.map((d) => {
      const c = data.domains[d];
      return h("div", { class: "dom" }, h("a", { href: "#/?domain=" + encodeURIComponent(d) }, d), ": ",
        ["critical", "degraded", "unknown", "healthy"].filter((b) => c[b]).map((b) => h("span", {}, band(b), " ", c[b], " ")));
    })),
    h("div", { class: "filters" },
      h("label", { for: "f-domain" }, "Domain "),
      h("select", { id: "f-domain", onchange: (e) => setParam("domain", e.target.value) },
        h("option", { value: "" }, "all"), domains.map((d) => h("option", { value: d, selected: d === domain }, d))),
      h("label", { for: "f-band" }, "Band "),
      h("select", { id: "f-band", onchange: (e) => setParam("band", e.target.value) },
        h("option", { value: "" }, "all"), ["critical", "degraded", "unknown", "healthy"].map((b) => h("option", { value: b, selected: b === bandFilter }, b)))),
    h("table", { id: "mesh" },
      h("caption", { class: "visually-hidden" }, "Products with health, trust and 7-day trust"),
      h("thead", {}, h("tr", {}, ["Product", "Domain", "Health", "Trust", "Trust, 7 days", "Cause"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)),
    h("div", { class: "pager" },
      offset > 0 ? h("a", { href: "#/?" + new URLSearchParams({ ...Object.fromEntries(params), offset: Math.max(0, offset - limit) }) }, "← previous") : null,
      h("span", { class: "muted" }, `${data.total ? offset + 1 : 0}–${Math.min(offset + limit, data.total)} of ${data.total}`),
      offset + limit < data.total ? h("a", { href: "#/?" + new URLSearchParams({ ...Object.fromEntries(params), offset: offset + limit }) }, "next →") : null));
  page = {
    kind: "mesh",
    score(s) {
      const tr = main.querySelector(`tr[data-urn="${CSS.escape(s.product)}"]`);
      if (!tr) return;
      tr.querySelector(".health").replaceChildren(band(s.health_band), " ", h("span", { class: "num" }, fmt(s.health)));
      tr.querySelector(".trust").replaceChildren(band(s.trust_band), " ", h("span", { class: "num" }, fmt(s.trust)));
      tr.querySelector(".cause").textContent = s.cause || "";
      tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash");
    },
  };
}

// ---- product -------------------------------------------------------------

function historyPlot(el, history) {
  const xs = history.map((p) => p.at / 1000);
  const health = history.map((p) => p.health);
  const trust = history.map((p) => p.trust);
  const width = Math.max(320, el.clientWidth || 600);
  const markers = []; // band changes: the alerts' moments
  for (let i = 1; i < history.length; i++) {
    if (history[i].trust_band !== history[i - 1].trust_band || history[i].health_band !== history[i - 1].health_band) markers.push(i);
  }
  const plot = new uPlot({
    width, height: 280, title: "Health and trust",
    scales: { y: { range: [0, 100] } },
    series: [{}, { label: "health", stroke: "#8250df", width: 2, points: { show: true, size: 5 } },
             { label: "trust", stroke: "#0969da", width: 2, points: { show: true, size: 5 } }],
    axes: [{}, { values: (u, vals) => vals.map((v) => v + "") }],
    hooks: { draw: [(u) => {
      const ctx = u.ctx;
      ctx.save();
      for (const [v, color] of [[BANDS.healthy, "#1a7f37"], [BANDS.degraded, "#cf222e"]]) { // band thresholds
        const y = u.valToPos(v, "y", true);
        ctx.strokeStyle = color; ctx.setLineDash([6, 4]); ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
      }
      ctx.setLineDash([]);
      for (const i of markers) { // alert markers
        const x = u.valToPos(xs[i], "x", true), p = history[i];
        ctx.fillStyle = bandColor(p.trust_band);
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x - 6, u.bbox.top - 10); ctx.lineTo(x + 6, u.bbox.top - 10); ctx.fill();
      }
      ctx.restore();
    }] },
  }, [xs, health, trust], el);
  el.setAttribute("data-points", String(history.length));
  return { plot, xs, health, trust };
}

function lineagePlot(el, graph, current, onClick) {
  const nodes = graph.nodes.map((n) => ({ data: { id: n.urn, label: (n.domain ? n.domain + ":" : "") + n.name + "\n" + (n.trust === null ? "trust unknown" : "trust " + n.trust.toFixed(0)),
    color: bandColor(n.trust_band), current: n.urn === current ? 1 : 0 } }));
  const edges = graph.edges.map((e) => ({ data: { id: e.from + "->" + e.to, source: e.from, target: e.to } }));
  if (window.cytoscapeDagre && !window.__dagreRegistered) { cytoscape.use(window.cytoscapeDagre); window.__dagreRegistered = true; }
  const cy = cytoscape({
    container: el, elements: [...nodes, ...edges],
    layout: { name: "dagre", rankDir: "LR", nodeSep: 20, rankSep: 70 },
    style: [
      { selector: "node", style: { "background-color": "data(color)", label: "data(label)", color: "#fff", "text-wrap": "wrap",
        "text-valign": "center", "font-size": 11, shape: "round-rectangle", width: 170, height: 44, "text-max-width": 160 } },
      { selector: "node[current = 1]", style: { "border-width": 4, "border-color": "#1b1f24" } },
      { selector: "edge", style: { width: 2, "line-color": "#8c959f", "target-arrow-color": "#8c959f", "target-arrow-shape": "triangle", "curve-style": "bezier" } },
    ],
    userZoomingEnabled: true, wheelSensitivity: 0.2,
  });
  cy.on("tap", "node", (e) => onClick(e.target.id()));
  el.setAttribute("data-nodes", String(graph.nodes.length));
  return cy;
}

async function productPage(urn) {
  const d = await api("/api/products/" + encodeURIComponent(urn));
  const p = d.product, s = d.score;
  const comps = s.components.filter((c) => !c.characteristic);
  const chars = s.components.filter((c) => c.characteristic);
  const histEl = h("div", { id: "history", role: "img", "aria-label": `score history of ${short(urn)}: ${d.history.length} points` });
  const graphEl = h("div", { id: "graph", role: "img", "aria-label": `lineage of ${short(urn)}: ${d.lineage.nodes.length} products; use the list below to open one` });
  const headEl = h("div", { class: "score-head", id: "score-head" });
  const renderHead = (sc) => headEl.replaceChildren(
    h("div", {}, h("div", { class: "muted" }, "Health"), h("span", { class: "big" }, fmt(sc.health)), " ", band(sc.health_band)),
    h("div", {}, h("div", { class: "muted" }, "Trust"), h("span", { class: "big" }, fmt(sc.trust)), " ", band(sc.trust_band)),
    h("div", { class: "muted" }, sc.cause || ""));
  renderHead(s);
  main.replaceChildren(
    h("h1", {}, p.name || short(urn)),
    h("p", { class: "muted" }, urn, " · domain ", h("a", { href: "#/?domain=" + encodeURIComponent(p.domain) }, p.domain),
      p.owners.length ? " · owners " + p.owners.join(", ") : "", p.lifecycle ? " · " + p.lifecycle : ""),
    p.description ? h("p", {}, p.description) : null,
    headEl,
    h("h2", {}, "Score history"), histEl,
    h("div", { class: "cols" },
      h("section", {}, h("h2", {}, "Components"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Component", "Score", "Weight", "Why"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, comps.map((c) => h("tr", {}, h("td", {}, c.name), h("td", { class: "num" }, fmt(c.score)), h("td", { class: "num" }, c.weight ? c.weight.toFixed(2) : "—"), h("td", {}, c.detail)))))),
      h("section", {}, h("h2", {}, "Characteristics"),
        h("ul", { class: "checklist" }, chars.map((c) => h("li", {},
          h("span", { class: c.score >= 100 ? "ok" : "no", "aria-hidden": "true" }, c.score >= 100 ? "✓ " : "✗ "),
          h("span", { class: "visually-hidden" }, c.score >= 100 ? "met: " : "not met: "),
          h("strong", {}, c.name), " ", h("span", { class: "muted" }, `${fmt(c.score)} — ${c.detail}`)))))),
    h("h2", {}, "Root causes"),
    s.root_causes.length ? h("ul", {}, s.root_causes.map((c) => h("li", {},
      h("a", { href: productHref(c.product) }, short(c.product)), ` (${c.hops === 0 ? "this product" : c.hops + (c.hops === 1 ? " hop" : " hops") + " up"}) `, band(c.health_band),
      c.signals && c.signals.length ? h("span", { class: "muted" }, " " + c.signals.join("; ")) : null))) : h("p", { class: "muted" }, "None."),
    s.reasons.length ? h("ul", { class: "muted" }, s.reasons.map((r) => h("li", {}, r))) : null,
    h("h2", {}, "Lineage"),
    h("p", { class: "legend" }, h("span", {}, "upstream ← this product → downstream; colour: trust band"), ["healthy", "degraded", "critical", "unknown"].map((b) => h("span", {}, band(b)))),
    graphEl,
    h("ul", { class: "visually-hidden", "aria-label": "Products in the lineage graph" },
      d.lineage.nodes.filter((n) => n.urn !== urn).map((n) => h("li", {}, h("a", { href: productHref(n.urn) }, short(n.urn) + (n.depth < 0 ? " (upstream)" : " (downstream)"))))),
    h("div", { class: "cols" },
      h("section", {}, h("h2", {}, "Consumers, 30 days"),
        d.consumers.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Domain", "Team", "Users", "Reads"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, d.consumers.map((c) => h("tr", {}, h("td", {}, c.domain || "—"), h("td", {}, c.team || "—"), h("td", { class: "num" }, c.users), h("td", { class: "num" }, c.reads))))) : h("p", { class: "muted" }, "No reads.")),
      h("section", {}, h("h2", {}, "Output datasets"),
        h("ul", {}, p.outputs.map((o) => h("li", {}, h("a", { href: datasetHref(o) }, short(o))))))),
    h("h2", {}, "Recent quality checks"),
    d.checks.length ? h("table", {}, h("thead", {}, h("tr", {}, ["When", "Dataset", "Check", "Status", "Severity"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, d.checks.map((c) => h("tr", {}, h("td", {}, when(c.at)), h("td", {}, short(c.dataset)), h("td", {}, c.name), h("td", {}, c.status), h("td", {}, c.severity))))) : h("p", { class: "muted" }, "No checks in 30 days."),
    h("h2", {}, "Recent runs"),
    d.runs.length ? h("table", {}, h("thead", {}, h("tr", {}, ["When", "Dataset", "Job", "State"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, d.runs.map((r) => h("tr", {}, h("td", {}, when(r.at)), h("td", {}, short(r.dataset)), h("td", {}, short(r.job)), h("td", {}, r.state))))) : h("p", { class: "muted" }, "No runs in 30 days."));
  const hist = historyPlot(histEl, d.history);
  const cy = lineagePlot(graphEl, d.lineage, urn, (id) => { location.hash = productHref(id); });
  page = {
    kind: "product", urn,
    score(sc) {
      const node = cy.getElementById(sc.product);
      if (node && node.length) {
        node.data("color", bandColor(sc.trust_band));
        node.data("label", node.data("label").replace(/\n.*$/, "\n" + (sc.trust === null ? "trust unknown" : "trust " + sc.trust.toFixed(0))));
      }
      if (sc.product !== urn) return;
      renderHead(sc);
      hist.xs.push(sc.at / 1000); hist.health.push(sc.health); hist.trust.push(sc.trust);
      hist.plot.setData([hist.xs, hist.health, hist.trust]);
      histEl.setAttribute("data-points", String(hist.xs.length));
    },
  };
}

// ---- dataset -------------------------------------------------------------

async function datasetPage(urn) {
  const d = await api("/api/datasets/" + encodeURIComponent(urn));
  const fieldsTable = (fields) => h("table", {},
    h("thead", {}, h("tr", {}, ["Field", "Type", "Description", "Classification", "PII"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, fields.map((f) => h("tr", {}, h("td", {}, f.name), h("td", {}, f.type), h("td", {}, f.description),
      h("td", {}, f.classification || "—"), h("td", {}, f.pii ? h("span", { class: "pii" }, "PII") : "")))));
  const colEl = h("div", { id: "colgraph", role: "img", "aria-label": `column lineage of ${short(urn)}: ${d.column_lineage.length} dependencies` });
  main.replaceChildren(
    h("h1", {}, short(urn)),
    h("p", { class: "muted" }, urn, d.product ? [" · owned by ", h("a", { href: productHref(d.product) }, short(d.product)), " (", d.domain, ")"] : " · no product declares it",
      d.product_score ? [" · ", band(d.product_score.trust_band)] : null),
    d.description ? h("p", {}, d.description) : null,
    h("h2", {}, "Fields"),
    d.fields.length ? fieldsTable(d.fields) : h("p", { class: "muted" }, "No declared fields."),
    d.observed_fields.length ? [h("h2", {}, "Fields seen by OpenLineage producers"), fieldsTable(d.observed_fields)] : null,
    h("h2", {}, "Column lineage"),
    d.column_lineage.length ? colEl : h("p", { class: "muted" }, "No column lineage reported."),
    h("div", { class: "cols" },
      h("section", {}, h("h2", {}, "Built from"), d.upstream.length ? h("ul", {}, d.upstream.map((u) => h("li", {}, h("a", { href: datasetHref(u) }, short(u))))) : h("p", { class: "muted" }, "No upstream datasets.")),
      h("section", {}, h("h2", {}, "Feeds"), d.downstream.length ? h("ul", {}, d.downstream.map((u) => h("li", {}, h("a", { href: datasetHref(u) }, short(u))))) : h("p", { class: "muted" }, "No downstream datasets."))),
    h("h2", {}, "Usage, 30 days"),
    d.usage.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Day", "Reads", "Users"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, d.usage.map((u) => h("tr", {}, h("td", {}, u.day), h("td", { class: "num" }, u.reads), h("td", { class: "num" }, u.users))))) : h("p", { class: "muted" }, "No reads."));
  if (d.column_lineage.length) {
    const nodes = new Map(), edges = [];
    for (const c of d.column_lineage) {
      const a = c.input_dataset + "#" + c.input_field, b = c.output_dataset + "#" + c.output_field;
      nodes.set(a, { id: a, label: short(c.input_dataset).split(/[/:]/).pop() + "." + c.input_field, here: c.input_dataset === urn });
      nodes.set(b, { id: b, label: short(c.output_dataset).split(/[/:]/).pop() + "." + c.output_field, here: c.output_dataset === urn });
      edges.push({ data: { id: a + "->" + b, source: a, target: b, label: c.transformation || "" } });
    }
    if (window.cytoscapeDagre && !window.__dagreRegistered) { cytoscape.use(window.cytoscapeDagre); window.__dagreRegistered = true; }
    cytoscape({ container: colEl,
      elements: [...[...nodes.values()].map((n) => ({ data: { id: n.id, label: n.label, color: n.here ? "#0969da" : "#57606a" } })), ...edges],
      layout: { name: "dagre", rankDir: "LR", nodeSep: 10, rankSep: 120 },
      style: [{ selector: "node", style: { "background-color": "data(color)", label: "data(label)", color: "#fff", "font-size": 11, shape: "round-rectangle", width: 190, height: 28, "text-valign": "center" } },
              { selector: "edge", style: { width: 1.5, "line-color": "#8c959f", "target-arrow-shape": "triangle", "target-arrow-color": "#8c959f", "curve-style": "bezier", label: "data(label)", "font-size": 9 } }] });
  }
  page = { kind: "dataset", urn, score() {} };
}

// ---- routing and live ----------------------------------------------------

async function route() {
  const hash = location.hash || "#/";
  page = null;
  main.setAttribute("aria-busy", "true");
  try {
    if (hash.startsWith("#/product/")) await productPage(decodeURIComponent(hash.slice(10)));
    else if (hash.startsWith("#/dataset/")) await datasetPage(decodeURIComponent(hash.slice(10)));
    else await meshPage(new URLSearchParams(hash.split("?")[1] || ""));
    document.title = (main.querySelector("h1")?.textContent || "") + " — meshpulse catalog";
  } catch (err) {
    main.replaceChildren(h("h1", {}, "Not available"), h("p", {}, err.message), h("p", {}, h("a", { href: "#/" }, "Back to the mesh")));
  } finally {
    main.removeAttribute("aria-busy");
  }
}

function live() {
  const status = document.getElementById("live");
  const es = new EventSource("/api/live");
  es.onopen = () => { status.textContent = "live"; };
  es.onerror = () => { status.textContent = "reconnecting…"; };
  es.addEventListener("score", (e) => { const { score } = JSON.parse(e.data); if (page) page.score(score); });
  es.addEventListener("alert", (e) => {
    const { alert: a } = JSON.parse(e.data);
    const trust = a.new_trust === null || a.new_trust === undefined ? "unknown" : a.new_trust.toFixed(0);
    toast(`${short(a.product_urn)}: trust ${trust} ${a.new_trust_band}, health ${a.new_health_band} — ${a.cause}`);
  });
}

window.addEventListener("hashchange", () => { route(); main.focus(); });
document.addEventListener("keydown", (e) => { if (e.key === "/" && document.activeElement !== q) { e.preventDefault(); q.focus(); } });
route();
live();
