// ashiato's three-layer botnet graph: attacked ports -> bots -> C&C/download servers.
// Plain JavaScript drawing SVG, no library and no network access. It reads the graph JSON of
// GET /v1/graph/{claim}?format=json from <script id="graph-data" type="application/json">,
// lays the nodes out in three columns (bots ordered by the servers they reached, to cut
// crossings), lets nodes be dragged, shows the evidence of a node or edge on hover (click
// pins it), and filters by time window, server port, feature and minimum bots.
// Every text from the data goes through textContent or setAttribute, never innerHTML:
// server names and process names come from reporters.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var COL = { port: 90, bot: 390, server: 690 };
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var svg = document.getElementById("graph");
  var panel = document.getElementById("evidence");
  var table = document.getElementById("ranking");
  var form = document.getElementById("filters");
  var pinned = null;

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, text, parent) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }
  function portName(p) { return p === null || p === undefined ? "any" : String(p); }
  function list(v) { return Array.isArray(v) ? v.join(", ") : (v === null || v === undefined ? "" : String(v)); }

  // The filters as the form holds them.
  function filters() {
    var f = {};
    var t = function (name) {
      var v = form.elements[name].value.trim();
      if (!v) return null;
      var ms = Date.parse(v);
      return isNaN(ms) ? NaN : ms;
    };
    f.from = t("from");
    f.to = t("to");
    var port = form.elements.port.value.trim();
    f.port = port === "" ? null : Number(port);
    f.feature = form.elements.feature.value || null;
    f.minBots = Number(form.elements.min_bots.value || "1");
    return f;
  }

  function recordPasses(r, f) {
    var ms = Number(r.time_ns) / 1e6;
    if (f.from !== null && !(ms >= f.from)) return false;
    if (f.to !== null && !(ms <= f.to)) return false;
    if (f.port !== null && r.port !== f.port) return false;
    if (f.feature && (r.features || []).indexOf(f.feature) < 0) return false;
    return true;
  }

  // What survives the filters: edges with a passing record, servers with enough bots.
  function visible(f) {
    var edges = data.bot_server.filter(function (e) {
      return e.records.some(function (r) { return recordPasses(r, f); });
    });
    var botsOf = {};
    edges.forEach(function (e) { (botsOf[e.server] = botsOf[e.server] || {})[e.bot] = true; });
    var servers = data.servers.filter(function (s) {
      return Object.keys(botsOf[s.server] || {}).length >= f.minBots;
    });
    var keep = {};
    servers.forEach(function (s) { keep[s.server] = true; });
    edges = edges.filter(function (e) { return keep[e.server]; });
    var bots = {};
    edges.forEach(function (e) { bots[e.bot] = true; });
    var portEdges = data.port_bot.filter(function (e) { return bots[e.bot]; });
    var ports = {};
    portEdges.forEach(function (e) { ports[portName(e.port)] = true; });
    return { servers: servers, edges: edges, bots: Object.keys(bots), portEdges: portEdges, ports: Object.keys(ports), botsOf: botsOf };
  }

  function show(title, rows) {
    panel.textContent = "";
    html("h2", title, panel);
    var dl = html("dl", undefined, panel);
    rows.forEach(function (r) {
      html("dt", r[0], dl);
      html("dd", r[1], dl);
    });
  }

  function serverRows(s) {
    return [
      ["rank", "#" + s.rank], ["score", s.score.toFixed(3)], ["distinct bots", s.reporters],
      ["attack weight", s.weight.toFixed(3)], ["popularity factor (idf)", s.idf.toFixed(3)],
      ["other incidents", s.other_incidents], ["ports", list(s.ports)], ["names", list(s.fqdns)],
      ["processes", list(s.processes)], ["features", list(s.features)],
      ["origin AS", s.asn === null ? (s.asn_note || "unknown") : "AS" + s.asn + (s.asns ? " (" + list(s.asns) + ")" : "")],
      ["prefix", s.prefix || "unknown"], ["bots", list(s.reporter_ids)]
    ];
  }

  function edgeRows(e) {
    var rows = [["bot", e.bot], ["server", e.server], ["records", e.record_count + (e.records.length < e.record_count ? " (first " + e.records.length + " shown)" : "")]];
    e.records.forEach(function (r, i) {
      rows.push(["record " + (i + 1), r.time + " " + r.proto + "/" + r.port + " " + (r.fqdn || "") + " process " + (r.process || "unknown") + " [" + list(r.features) + "]"]);
    });
    return rows;
  }

  function hover(target, title, rows) {
    target.addEventListener("mouseenter", function () { if (!pinned) show(title, rows); });
    target.addEventListener("click", function (ev) { pinned = pinned === target ? null : target; show(title, rows); ev.stopPropagation(); });
  }

  function layout(v) {
    var pos = {};
    var place = function (kind, ids) {
      var h = Math.max(ids.length * 48 + 40, 200);
      ids.forEach(function (id, i) { pos[kind + ":" + id] = { x: COL[kind], y: 40 + (i + 0.5) * (h - 40) / ids.length }; });
      return h;
    };
    var servers = v.servers.map(function (s) { return s.server; });
    var h1 = place("server", servers);
    // Bots at the mean height of their servers.
    var rankOf = {};
    servers.forEach(function (s, i) { rankOf[s] = i; });
    var bary = {};
    v.edges.forEach(function (e) { (bary[e.bot] = bary[e.bot] || []).push(rankOf[e.server]); });
    var bots = v.bots.slice().sort(function (a, b) {
      var m = function (x) { var l = bary[x] || [0]; return l.reduce(function (p, c) { return p + c; }, 0) / l.length; };
      return m(a) - m(b) || (a < b ? -1 : 1);
    });
    var h2 = place("bot", bots);
    var h3 = place("port", v.ports.slice().sort());
    return { pos: pos, height: Math.max(h1, h2, h3) };
  }

  function draw() {
    var f = filters();
    var v = visible(f);
    var lay = layout(v);
    var pos = lay.pos;
    svg.textContent = "";
    svg.setAttribute("viewBox", "0 0 820 " + lay.height);
    svg.setAttribute("height", lay.height);
    var edgeLayer = el("g", { "class": "edges" }, svg);
    var nodeLayer = el("g", { "class": "nodes" }, svg);
    var lines = [];
    function line(a, b, cls, attrs) {
      var l = el("line", Object.assign({ "class": "edge " + cls, x1: pos[a].x, y1: pos[a].y, x2: pos[b].x, y2: pos[b].y }, attrs), edgeLayer);
      lines.push({ line: l, a: a, b: b });
      return l;
    }
    v.portEdges.forEach(function (e) {
      var l = line("port:" + portName(e.port), "bot:" + e.bot, "port-bot", { "data-from": portName(e.port), "data-to": e.bot });
      hover(l, "attack on port " + portName(e.port), [["bot", e.bot], ["attack packets in the window", e.attack_packets]]);
    });
    v.edges.forEach(function (e) {
      var l = line("bot:" + e.bot, "server:" + e.server, "bot-server", { "data-from": e.bot, "data-to": e.server });
      hover(l, e.bot + " \u2192 " + e.server, edgeRows(e));
    });
    function node(kind, id, label, attrs, rows) {
      var p = pos[kind + ":" + id];
      var g = el("g", Object.assign({ "class": "node " + kind, "data-id": id, transform: "translate(" + p.x + "," + p.y + ")" }, attrs), nodeLayer);
      if (kind === "server") el("rect", { x: -9, y: -9, width: 18, height: 18 }, g);
      else el("circle", { r: kind === "port" ? 11 : 8 }, g);
      var t = el("text", { x: kind === "server" ? 14 : -14, y: 4, "text-anchor": kind === "server" ? "start" : "end" }, g);
      t.textContent = label;
      hover(g, label, rows);
      drag(g, kind + ":" + id);
      return g;
    }
    function drag(g, key) {
      g.addEventListener("mousedown", function (ev) {
        ev.preventDefault();
        var pt = svg.createSVGPoint();
        function move(m) {
          pt.x = m.clientX; pt.y = m.clientY;
          var q = pt.matrixTransform(svg.getScreenCTM().inverse());
          pos[key] = { x: q.x, y: q.y };
          g.setAttribute("transform", "translate(" + q.x + "," + q.y + ")");
          lines.forEach(function (l) {
            if (l.a === key) { l.line.setAttribute("x1", q.x); l.line.setAttribute("y1", q.y); }
            if (l.b === key) { l.line.setAttribute("x2", q.x); l.line.setAttribute("y2", q.y); }
          });
        }
        function up() { document.removeEventListener("mousemove", move); document.removeEventListener("mouseup", up); }
        document.addEventListener("mousemove", move);
        document.addEventListener("mouseup", up);
      });
    }
    v.ports.forEach(function (p) { node("port", p, "port " + p, {}, [["attacked port", p]]); });
    v.bots.forEach(function (b) {
      var n = v.edges.filter(function (e) { return e.bot === b; }).length;
      node("bot", b, b, {}, [["bot", b], ["servers reached", n]]);
    });
    v.servers.forEach(function (s) {
      var label = "#" + s.rank + " " + s.server + (s.fqdns.length ? " (" + s.fqdns[0] + ")" : "");
      node("server", s.server, label, { "data-rank": s.rank, "class": "node server rank-" + s.rank }, serverRows(s));
    });
    table.textContent = "";
    var head = html("tr", undefined, html("thead", undefined, table));
    ["rank", "server", "AS", "prefix", "score", "bots", "ports", "names", "processes", "features"].forEach(function (h) { html("th", h, head); });
    var body = html("tbody", undefined, table);
    v.servers.forEach(function (s) {
      var tr = html("tr", undefined, body);
      tr.setAttribute("data-rank", s.rank);
      [s.rank, s.server, s.asn === null ? "unknown" : "AS" + s.asn, s.prefix || "unknown", s.score.toFixed(3),
        Object.keys(v.botsOf[s.server] || {}).length, list(s.ports), list(s.fqdns), list(s.processes), list(s.features)]
        .forEach(function (c) { html("td", c, tr); });
    });
    document.getElementById("status").textContent =
      v.ports.length + " ports, " + v.bots.length + " bots, " + v.servers.length + " servers shown" +
      (isNaN(f.from) || isNaN(f.to) ? " (a time is not understood: use RFC 3339, e.g. 2026-01-01T10:00:00Z)" : "");
    svg.setAttribute("data-ready", "1");
  }

  // The feature choices are those the servers show.
  var feats = {};
  data.servers.forEach(function (s) { s.features.forEach(function (x) { feats[x] = true; }); });
  Object.keys(feats).sort().forEach(function (x) {
    var o = html("option", x, form.elements.feature);
    o.value = x;
  });
  // Filters given in the address (?min_bots=2&feature=irc...) start in the form.
  var given = new URLSearchParams(window.location.search);
  ["from", "to", "port", "feature", "min_bots"].forEach(function (k) {
    if (given.has(k)) form.elements[k].value = given.get(k);
  });
  form.addEventListener("input", draw);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); draw(); });
  document.addEventListener("click", function () { pinned = null; });
  draw();
})();
