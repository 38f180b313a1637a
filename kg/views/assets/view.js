/* mas-kg graph views.  All text from the data goes through textContent, never
 * innerHTML, so labels, ids and notes are shown as text whatever they contain.
 * The page exposes window.masKg for tests and notebooks. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("mas-kg-data").textContent);
  const meta = data.meta;
  const DIM_NODE = { background: "#f1f1f1", border: "#d6d6d6" };
  const DIM_EDGE = { color: "rgba(180,180,180,0.35)", highlight: "rgba(180,180,180,0.35)" };

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value);
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }
  const text = (tag, value, cls) => el(tag, cls ? { text: value, class: cls } : { text: value });
  const signText = (sign) => (sign > 0 ? "+" : "\u2212");

  function tooltip(id) {
    const info = meta.nodes[id] || {};
    return el("div", {}, [text("strong", info.label || id), text("div", info.kind || "")]);
  }
  const visNodes = data.nodes.map((n) => Object.assign({}, n, { title: tooltip(n.id) }));
  const nodes = new vis.DataSet(visNodes);
  const edges = new vis.DataSet(data.edges);
  const container = document.getElementById("graph");
  const network = new vis.Network(container, { nodes: nodes, edges: edges }, data.options);
  const base = {
    nodes: new Map(data.nodes.map((n) => [n.id, { color: n.color, font: n.font, borderWidth: n.borderWidth }])),
    edges: new Map(data.edges.map((e) => [e.id, { color: e.color, width: e.width }])),
  };
  const incident = new Map(data.nodes.map((n) => [n.id, []]));
  for (const e of data.edges) {
    incident.get(e.from).push(e.id);
    incident.get(e.to).push(e.id);
  }
  const state = { highlighted: { nodes: [], edges: [] }, selected: null };

  function highlight(nodeIds, edgeIds, emphasise) {
    const ns = new Set(nodeIds);
    const es = new Set(edgeIds);
    // An emphasised chain gets larger labels, readable when the whole chain is in view.
    nodes.update(data.nodes.map((n) => ns.has(n.id)
      ? Object.assign({ id: n.id }, base.nodes.get(n.id), { borderWidth: 3 },
                      emphasise ? { font: Object.assign({}, base.nodes.get(n.id).font, { size: 30 }),
                                    widthConstraint: { maximum: 320 } } : {})
      : { id: n.id, color: DIM_NODE, font: { color: "#b5b5b5", size: base.nodes.get(n.id).font.size },
          widthConstraint: { maximum: 180 }, borderWidth: 1 }));
    edges.update(data.edges.map((e) => es.has(e.id)
      ? { id: e.id, color: base.edges.get(e.id).color, width: base.edges.get(e.id).width + 2.5 }
      : { id: e.id, color: DIM_EDGE, width: 1 }));
    state.highlighted = { nodes: Array.from(ns), edges: Array.from(es) };
  }
  function clearHighlight() {
    nodes.update(data.nodes.map((n) => Object.assign({ id: n.id, widthConstraint: { maximum: 180 } }, base.nodes.get(n.id))));
    edges.update(data.edges.map((e) => Object.assign({ id: e.id }, base.edges.get(e.id))));
    state.highlighted = { nodes: [], edges: [] };
  }

  /* ---- the info panel ---- */
  const info = document.getElementById("info");
  function sourcesList(sources) {
    return el("ul", { class: "sources" }, (sources || []).map((s) => text("li", s)));
  }
  function edgeLine(id) {
    const e = edges.get(id);
    const m = meta.edges[id];
    const from = (meta.nodes[e.from] || {}).label || e.from;
    const to = (meta.nodes[e.to] || {}).label || e.to;
    return el("li", {}, [
      el("button", { class: "link", text: `${from} \u2192 (${signText(m.sign)}) ${to}`,
                     onclick: () => selectEdge(id) }),
      text("div", `${m.relation_label}`),
      sourcesList(m.sources),
    ]);
  }
  function showNode(id, extra) {
    const m = meta.nodes[id] || { id: id };
    const parts = [text("h2", m.label || id), text("div", m.kind || "", "hint")];
    if (m.value !== undefined && m.value !== null) {
      parts.push(text("p", `${m.value} ${m.unit || ""} (${m.interpretation}) at ${m.time || "untimed"}`));
      if (m.given) parts.push(text("p", `as given: ${m.given.value} ${m.given.unit}`, "hint"));
    }
    if (extra) parts.push(extra);
    if (m.rank) parts.push(text("p", `rank ${m.rank}, evidence points ${m.score}`));
    if (m.definition) {
      parts.push(text("p", m.definition));
      if (m.definition_source) parts.push(text("div", `definition source: ${m.definition_source}`, "hint"));
    }
    if (m.ids && m.ids.length) parts.push(text("h3", "Identifiers"), text("p", m.ids.join("  "), "ids"));
    if (m.synonyms) parts.push(text("h3", "Synonyms"), text("p", m.synonyms.join("; ")));
    if (m.lab_tests) {
      parts.push(text("h3", "Lab tests"), el("ul", {}, m.lab_tests.map((t) =>
        text("li", `${t.label} (${t.code}, ${t.unit}) ${t.loinc.join(" ")}`))));
    }
    for (const [key, title] of [["supporting", "For"], ["against", "Against"], ["other_evidence", "Other evidence rules"],
                                ["therapies", "Therapies indicated"]]) {
      if (m[key] && m[key].length) parts.push(text("h3", title), el("ul", {}, m[key].map((s) => text("li", s))));
    }
    const lines = incident.get(id) || [];
    if (lines.length) parts.push(text("h3", `Edges (${lines.length}) and their sources`), el("ul", {}, lines.map(edgeLine)));
    info.replaceChildren(...parts);
  }
  function showEdge(id) {
    const e = edges.get(id);
    const m = meta.edges[id];
    const from = (meta.nodes[e.from] || {}).label || e.from;
    const to = (meta.nodes[e.to] || {}).label || e.to;
    const parts = [text("h2", `${from} \u2192 ${to}`), text("div", `${m.category} edge, sign ${signText(m.sign)}`, "hint"),
                   text("p", m.relation_label)];
    if (m.relation && m.relation.includes(":")) parts.push(text("p", m.relation, "ids"));
    if (m.claim) parts.push(text("p", m.claim, "claim"));
    if (m.knowledge_level) parts.push(text("div", `knowledge level: ${m.knowledge_level}`, "hint"));
    if (m.weight !== undefined) parts.push(text("div", `evidence rule ${m.rule}: weight ${m.weight}`, "hint"));
    if (m.loinc) parts.push(text("div", `test ${m.test}: ${m.loinc.join(" ")}`, "ids"));
    parts.push(text("h3", "Sources"), sourcesList(m.sources));
    info.replaceChildren(...parts);
  }

  function selectNode(id) {
    if (!meta.nodes[id]) return false;
    state.selected = id;
    if (data.view === "patient" && id.startsWith("finding:")) return selectFinding(id.slice(8), 0);
    const ids = incident.get(id) || [];
    const ends = new Set([id]);
    for (const eid of ids) { const e = edges.get(eid); ends.add(e.from); ends.add(e.to); }
    highlight(Array.from(ends), ids);
    network.selectNodes([id]);
    showNode(id);
    return true;
  }
  function selectEdge(id) {
    const e = edges.get(id);
    state.selected = id;
    highlight([e.from, e.to], [id]);
    network.selectEdges([id]);
    showEdge(id);
  }

  /* ---- search ---- */
  const search = document.getElementById("search");
  const count = document.getElementById("search-count");
  const results = document.getElementById("search-results");
  function matches(query) {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    const scored = [];
    for (const n of data.nodes) {
      const m = meta.nodes[n.id] || {};
      const label = (m.label || n.id).toLowerCase();
      const other = [n.id].concat(m.ids || [], m.synonyms || []).map((s) => String(s).toLowerCase());
      let score = label === q ? 0 : label.startsWith(q) ? 1 : label.includes(q) ? 2
        : other.some((s) => s === q) ? 3 : other.some((s) => s.includes(q)) ? 4 : -1;
      if (score >= 0) scored.push([score, label, n.id]);
    }
    scored.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    return scored.map((s) => s[2]);
  }
  function showMatches() {
    const found = matches(search.value);
    count.textContent = search.value.trim() ? `${found.length} match${found.length === 1 ? "" : "es"}` : "";
    results.hidden = !search.value.trim();
    results.replaceChildren(text("h2", "Search"), el("ul", {}, found.slice(0, 15).map((id) =>
      el("li", {}, [el("button", { class: "link", text: (meta.nodes[id] || {}).label || id,
                                   onclick: () => focusNode(id) })]))));
    return found;
  }
  function focusNode(id) {
    selectNode(id);
    network.focus(id, { scale: 1.1, animation: false });
  }
  search.addEventListener("input", showMatches);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      const found = showMatches();
      if (found.length) focusNode(found[0]);
    } else if (event.key === "Escape") {
      search.value = "";
      showMatches();
      clearHighlight();
    }
  });

  /* ---- the patient panel ---- */
  const patient = document.getElementById("patient");
  const findingItems = new Map();
  function chainView(finding, index) {
    const path = finding.paths[index];
    const box = el("div", { class: "chain-box" }, [text("h3", "Why it is abnormal")]);
    if (!path) {
      box.appendChild(text("p", "No sign-consistent causal path in the ontology explains this finding.", "hint"));
      return box;
    }
    if (finding.paths.length > 1) {
      box.appendChild(el("div", { class: "paths" }, finding.paths.map((p, i) => el("button", {
        class: i === index ? "link current" : "link", text: `path ${i + 1}${i === 0 ? " (chosen)" : ""}`,
        title: p.text, onclick: () => selectFinding(finding.code, i) }))));
    }
    box.appendChild(text("div", `root: ${path.root}${path.in_context ? " (in the patient's context)" : ""}`, "hint"));
    box.appendChild(el("ol", { class: "chain" }, path.steps.map((s) => el("li", { class: s.sign === "+" ? "pos" : "neg" }, [
      text("div", `${s.from} \u2192 (${s.sign === "+" ? "+" : "\u2212"}) ${s.to}`),
      s.claim ? text("div", s.claim, "claim") : null,
      sourcesList(s.sources),
    ]))));
    return box;
  }
  function selectFinding(code, index) {
    const finding = (data.panel ? data.panel.findings : []).find((f) => f.code === code);
    if (!finding) return false;
    const chosen = index || 0;
    const path = finding.paths[chosen];
    state.selected = finding.node;
    highlight(path ? path.nodes : [finding.node], path ? path.edges : [], true);
    network.selectNodes([finding.node]);
    network.fit({ nodes: path ? path.nodes : [finding.node], maxZoomLevel: 1.1, animation: false });
    showNode(finding.node, chainView(finding, chosen));
    for (const [key, item] of findingItems) item.classList.toggle("active", key === code);
    document.getElementById("panel").scrollTop = 0;
    return true;
  }
  function patientPanel(p) {
    const parts = [text("h2", `Patient ${p.patient}`),
                   text("p", `evaluated at ${p.at}${p.age_years !== null && p.age_years !== undefined ? `, age ${p.age_years} y` : ""}`)];
    if (p.conditions.length) parts.push(text("p", `conditions: ${p.conditions.join(", ")}`));
    if (p.medications.length) parts.push(text("p", `medications: ${p.medications.join(", ")}`));
    if (p.alerts.length) {
      parts.push(text("h3", "Alerts"), el("ul", {}, p.alerts.map((a) => text("li", a.message, `alert-${a.severity}`))));
    }
    parts.push(text("h3", `Abnormal findings (${p.findings.length}): select one to see its chain`));
    const list = el("ul", { id: "findings" });
    for (const f of p.findings) {
      const item = el("li", { "data-code": f.code }, [el("button", {
        class: `link interp-${f.interpretation}`, text: f.text, onclick: () => selectFinding(f.code, 0) })]);
      findingItems.set(f.code, item);
      list.appendChild(item);
    }
    parts.push(list);
    parts.push(text("h3", "Candidates"), el("ol", {}, p.candidates.map((c) => el("li", {}, [
      el("button", { class: "link", text: `${c.label} (${c.score})`, onclick: () => focusNode(c.node) }),
      c.supporting.length ? el("details", {}, [text("summary", `${c.supporting.length} for`),
                                               el("ul", {}, c.supporting.map((s) => text("li", s)))]) : null,
      c.against.length ? el("details", {}, [text("summary", `${c.against.length} against`),
                                            el("ul", {}, c.against.map((s) => text("li", s)))]) : null,
    ]))));
    parts.push(text("h3", "Criteria"), el("table", { class: "criteria" }, p.criteria.map((c) => el("tr", {}, [
      el("td", { title: c.label, text: c.id }),
      text("td", c.status.replace("_", " "), `status-${c.status}`),
      text("td", c.score === null || c.score === undefined ? "" : `score ${c.score}` +
        (c.score_range ? ` [${c.score_range.map((v) => (v === null ? "?" : v)).join(", ")}]` : "") +
        (c.cutoff !== null && c.cutoff !== undefined ? `, cut-off ${c.cutoff}` : "")),
    ]))));
    if (p.rejected.length) {
      parts.push(text("h3", "Rejected observations"), el("ul", {}, p.rejected.map((r) =>
        text("li", `#${r.index}${r.code ? ` (${r.code})` : ""}: ${r.reason}`))));
    }
    if (p.notes.length) parts.push(text("h3", "Notes"), el("ul", {}, p.notes.map((n) => text("li", String(n)))));
    patient.replaceChildren(...parts);
  }
  if (data.panel) patientPanel(data.panel);

  /* ---- legend ---- */
  const legend = document.getElementById("legend");
  legend.appendChild(el("ul", {}, data.legend.nodes.map((k) => el("li", {}, [
    el("span", { class: "swatch", style: `background:${k.background};border-color:${k.border}` }), text("span", k.label)]))));
  legend.appendChild(el("ul", {}, data.legend.edges.map((k) => el("li", {}, [
    el("span", { class: "line", style: `border-top-color:${k.color};border-top-style:${k.dashes ? "dashed" : "solid"}` }),
    text("span", k.label)]))));

  network.on("click", (params) => {
    if (params.nodes.length) selectNode(params.nodes[0]);
    else if (params.edges.length) selectEdge(params.edges[0]);
    else { clearHighlight(); state.selected = null; }
  });
  const api = {
    data: data, network: network, nodes: nodes, edges: edges, ready: false, readyAt: null,
    highlighted: () => ({ nodes: state.highlighted.nodes.slice().sort(), edges: state.highlighted.edges.slice().sort() }),
    selected: () => state.selected,
    selectNode: selectNode, selectEdge: selectEdge, selectFinding: selectFinding, clearHighlight: clearHighlight,
    search: (query) => { search.value = query; return showMatches(); },
    domPosition: (id) => network.canvasToDOM(network.getPosition(id)),
  };
  window.masKg = api;
  network.once("afterDrawing", () => {
    api.ready = true;
    api.readyAt = performance.now();
    document.body.setAttribute("data-ready", "true");
  });
})();
