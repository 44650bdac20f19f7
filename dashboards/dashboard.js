// nanoprof dashboard: renders the JSON document embedded in the page (and, every
// data-refresh seconds, the one at <dashboard>/json) into the tables and the charts (inline
// SVG: requests per second and p95 from "timeline", each route's latency distribution from
// its "histogram", and the store's flame graph from <dashboard>/flamegraph.txt).  Every
// string goes in through textContent or setAttribute, never as markup; nothing is loaded from
// anywhere but this origin.
"use strict";
(function () {
  var base = location.pathname.replace(/\/+$/, "");
  var token = new URLSearchParams(location.search).get("profile_token");
  var suffix = token ? "?profile_token=" + encodeURIComponent(token) : "";
  var sortState = {};

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function card(parent, key, value) {
    var c = el("div", null, "card");
    c.appendChild(el("div", value, "v"));
    c.appendChild(el("div", key, "k"));
    parent.appendChild(c);
  }

  function fill(id, rows, cells, flag) {
    var table = document.getElementById(id);
    var st = sortState[id];
    if (st) {
      rows = rows.slice().sort(function (a, b) {
        var x = a[st.key], y = b[st.key];
        if (st.num) { x = Number(x) || 0; y = Number(y) || 0; }
        else { x = String(x === undefined ? "" : x); y = String(y === undefined ? "" : y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (st.dir === "asc" ? 1 : -1);
      });
    }
    var body = document.createElement("tbody");
    if (!rows.length) {
      var tr = el("tr");
      var td = el("td", "nothing yet", "empty");
      td.colSpan = table.tHead.rows[0].cells.length;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    rows.forEach(function (r) {
      var tr = el("tr");
      if (flag && flag(r)) tr.className = "flag";
      cells.forEach(function (c) {
        var td = typeof c === "function" ? c(r) : el("td", r[c.key], c.cls || "");
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.replaceChild(body, table.tBodies[0]);
    table._rows = rows;
    table._cells = cells;
    table._flag = flag;
  }

  function breakdown(r) {
    var td = el("td");
    var bar = el("div", null, "bar");
    var total = Number(r.total_ms) || 0;
    var parts = [["mw", r.middleware_ms], ["rt", r.routing_ms],
                 ["hd", Math.max(0, r.handler_ms - r.sql_ms)], ["sql", r.sql_ms]];
    parts.forEach(function (p) {
      var s = el("span", null, p[0]);
      s.style.width = total > 0 ? (100 * Number(p[1]) / total).toFixed(2) + "%" : "0";
      s.title = p[0] + " " + p[1] + " ms";
      bar.appendChild(s);
    });
    td.appendChild(bar);
    return td;
  }

  function num(key) { return {key: key, cls: "num"}; }

  // A cell of links: [text, path below the dashboard, extra query] each, the href built from
  // encoded parts (a request id or route is data, never markup or a path of its own).
  function links(list) {
    var td = el("td");
    list.forEach(function (l, i) {
      if (i) td.appendChild(document.createTextNode(" "));
      var a = el("a", l[0]);
      var q = [l[2], token ? "profile_token=" + encodeURIComponent(token) : ""]
        .filter(Boolean).join("&");
      a.setAttribute("href", base + l[1] + (q ? "?" + q : ""));
      td.appendChild(a);
    });
    return td;
  }

  function requestFlame(r) {
    var at = "/requests/" + encodeURIComponent(r.request_id) + "/";
    return links([["svg", at + "flame.svg"], ["libs collapsed", at + "flame.svg", "collapse=libs"],
                  ["speedscope", at + "speedscope.json"], ["trace", at + "trace.json"]]);
  }

  function routeFlame(r) {
    var route = "route=" + encodeURIComponent(r.route);
    return links([["svg", "/routes/flame.svg", route],
                  ["libs collapsed", "/routes/flame.svg", route + "&collapse=libs"]]);
  }

  // ---- charts: inline SVG built element by element (createElementNS, setAttribute and
  // textContent only), so the page's policy (no inline style attribute, no markup from data)
  // holds for them too.
  var NS = "http://www.w3.org/2000/svg";
  var MAX_DISTS = 8;        // route distributions drawn: the busiest; the table has them all
  var MAX_FLAME_LINES = 20000, MAX_FLAME_FRAMES = 4000;

  function svg(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function svgText(parent, x, y, text, anchor, cls) {
    var t = svg("text", {x: x, y: y, "text-anchor": anchor || "start"}, parent);
    if (cls) t.setAttribute("class", cls);
    t.textContent = String(text);
    return t;
  }

  function tip(parent, text) { svg("title", null, parent).textContent = String(text); }

  // A round number at or above v, for an axis.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  function fmt(v) {
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) :
      v > 0 ? v.toPrecision(2) : "0";
  }

  // A time series: one value per second of the timeline (the second under way left out).
  function seriesChart(id, points, value, unit, cls) {
    var box = document.getElementById(id);
    box.textContent = "";
    var W = 560, H = 170, L = 44, R = 10, T = 10, B = 22;
    var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box);
    var vals = points.map(value);
    var max = niceMax(Math.max.apply(null, vals.concat([0])));
    var n = Math.max(points.length, 2);
    function X(i) { return L + (W - L - R) * i / (n - 1); }
    function Y(v) { return T + (H - T - B) * (1 - v / max); }
    for (var g = 0; g <= 2; g++) {
      var gv = max * g / 2;
      svg("line", {x1: L, x2: W - R, y1: Y(gv).toFixed(1), y2: Y(gv).toFixed(1), "class": "grid"}, root);
      svgText(root, L - 4, Y(gv) + 4, fmt(gv), "end");
    }
    if (points.length) {
      var first = points[0].t_s, last = points[points.length - 1].t_s;
      svgText(root, X(0), H - 6, first + " s", "start");
      svgText(root, X((points.length - 1) / 2), H - 6, Math.round((first + last) / 2) + " s", "middle");
      svgText(root, X(points.length - 1), H - 6, last === -1 ? "1 s ago" : last + " s", "end");
      var line = vals.map(function (v, i) { return (i ? "L" : "M") + X(i).toFixed(1) + " " + Y(v).toFixed(1); }).join("");
      svg("path", {d: line + "L" + X(vals.length - 1).toFixed(1) + " " + Y(0) + "L" + X(0) + " " + Y(0) + "Z",
                   "class": "area " + cls}, root);
      svg("path", {d: line, "class": "line " + cls}, root);
      var step = (W - L - R) / (n - 1);
      points.forEach(function (p, i) {
        if (p.errors > 0 && cls === "rps")
          svg("circle", {cx: X(i).toFixed(1), cy: Y(vals[i]).toFixed(1), r: 2.5, "class": "err"}, root);
        var hit = svg("rect", {x: (X(i) - step / 2).toFixed(1), y: T, width: step.toFixed(2),
                               height: H - T - B, "class": "hit"}, root);
        tip(hit, p.t_s + " s: " + fmt(vals[i]) + " " + unit + " (" + p.requests + " requests, " +
            p.errors + " 5xx, p95 " + p.p95_ms + " ms)");
      });
    }
    root.setAttribute("data-points", String(points.length));
    root.setAttribute("data-peak", String(Math.max.apply(null, vals.concat([0]))));
  }

  function renderTimeline(tl) {
    var pts = (tl && tl.points ? tl.points : []).filter(function (p) { return p.t_s < 0; });
    var per = tl && tl.interval_ms ? Number(tl.interval_ms) / 1000 : 1;
    seriesChart("chart-rps", pts, function (p) { return Number(p.requests) / per; }, "req/s", "rps");
    seriesChart("chart-p95", pts, function (p) { return Number(p.p95_ms) || 0; }, "ms", "p95");
  }

  function msOf(ns) {
    var ms = ns / 1e6;
    return ms >= 1000 ? fmt(ms / 1000) + " s" : ms >= 1 ? fmt(ms) + " ms" : fmt(ms * 1000) + " µs";
  }

  // Each route's latency histogram (coarse log buckets: equal widths on a log scale), the
  // busiest MAX_DISTS routes on one shared axis so that they compare, p50 and p95 marked.
  function renderDists(d) {
    var box = document.getElementById("dists");
    box.textContent = "";
    var lows = d.latency_buckets_ns || [];
    var routes = (d.routes || []).filter(function (r) { return r.histogram && r.histogram.counts.length; });
    routes = routes.slice().sort(function (a, b) { return b.count - a.count; });
    var shown = routes.slice(0, MAX_DISTS);
    document.getElementById("dists-note").textContent = routes.length > MAX_DISTS ?
      "(the " + MAX_DISTS + " busiest of " + routes.length + " routes)" : "";
    if (!shown.length) {
      box.appendChild(el("div", "nothing yet", "empty"));
      return;
    }
    var lo = Infinity, hi = 0;
    shown.forEach(function (r) {
      lo = Math.min(lo, r.histogram.first);
      hi = Math.max(hi, r.histogram.first + r.histogram.counts.length);
    });
    lo = Math.max(0, lo - 1);
    hi = Math.min(lows.length, hi + 1);
    var W = 300, H = 100, T = 14, B = 18, span = Math.max(hi - lo, 1);
    function bx(i) { return 4 + (W - 8) * (i - lo) / span; }
    function at(ms) { // x of a latency, inside its bucket
      var ns = ms * 1e6;
      for (var i = lo; i < hi; i++) {
        var a = lows[i], b = i + 1 < lows.length ? lows[i + 1] : a * 2;
        if (ns < b) return bx(i) + (bx(i + 1) - bx(i)) * Math.max(0, Math.min(1, (ns - a) / (b - a || 1)));
      }
      return bx(hi);
    }
    shown.forEach(function (r) {
      var card = el("div", null, "dist");
      var name = el("div", r.method + " " + r.route, "name");
      name.title = r.method + " " + r.route;
      card.appendChild(name);
      var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, card);
      var counts = r.histogram.counts, max = Math.max.apply(null, counts.concat([1]));
      counts.forEach(function (c, k) {
        if (!c) return;
        var i = r.histogram.first + k;
        var h = (H - T - B) * c / max;
        var bar = svg("rect", {x: bx(i).toFixed(1), y: (H - B - h).toFixed(1),
                               width: Math.max(bx(i + 1) - bx(i) - 1, 1).toFixed(1),
                               height: h.toFixed(1), "class": "bin"}, root);
        tip(bar, msOf(lows[i]) + " – " + (i + 1 < lows.length ? msOf(lows[i + 1]) : "∞") + ": " + c);
      });
      [["p50", r.p50_ms], ["p95", r.p95_ms]].forEach(function (m) {
        var x = at(Number(m[1])).toFixed(1);
        svg("line", {x1: x, x2: x, y1: T, y2: H - B, "class": "mark"}, root);
        var p50 = m[0] === "p50";
        svgText(root, Number(x) + (p50 ? -2 : 2), T - 4, m[0], p50 ? "end" : "start", "mark-label");
      });
      svgText(root, 4, H - 4, msOf(lows[lo]), "start");
      svgText(root, W - 4, H - 4, hi < lows.length ? msOf(lows[hi]) : "∞", "end");
      svgText(root, W / 2, H - 4, r.count + " requests, p95 " + r.p95_ms + " ms", "middle");
      box.appendChild(card);
    });
  }

  // The store's flame graph, from its collapsed stacks (<dashboard>/flamegraph.txt), drawn
  // here: a click on a frame zooms into it (its ancestors stay, full width, below), "reset
  // zoom" or a click on "all" goes back.  Frames narrower than half a pixel are left out.
  var flameTree = null, flameZoom = [];

  function parseCollapsed(text) {
    var root = {name: "all", total: 0, kids: new Map(), depth: 0}, depth = 0;
    var lines = text.split("\n");
    if (lines.length > MAX_FLAME_LINES) lines = lines.slice(0, MAX_FLAME_LINES);
    lines.forEach(function (line) {
      var sp = line.lastIndexOf(" ");
      if (sp <= 0) return;
      var ns = Number(line.slice(sp + 1));
      if (!(ns > 0)) return;
      var node = root;
      root.total += ns;
      line.slice(0, sp).split(";").forEach(function (f) {
        var next = node.kids.get(f);
        if (!next) {
          next = {name: f, total: 0, kids: new Map(), depth: node.depth + 1, parent: node};
          node.kids.set(f, next);
          depth = Math.max(depth, next.depth);
        }
        next.total += ns;
        node = next;
      });
    });
    root.maxDepth = depth;
    return root;
  }

  function hue(name) {
    var h = 2166136261;
    for (var i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
    return "rgb(" + (205 + h % 50) + "," + (80 + (h >>> 8) % 130) + "," + ((h >>> 16) % 55) + ")";
  }

  function drawFlame() {
    var box = document.getElementById("flame");
    box.textContent = "";
    var root = flameTree;
    if (!root || !root.total) {
      box.appendChild(el("div", "no stored requests yet", "empty"));
      return;
    }
    var zoom = root; // the zoomed frame: follow the kept path of names, as far as it goes
    for (var i = 0; i < flameZoom.length && zoom.kids.has(flameZoom[i]); i++) zoom = zoom.kids.get(flameZoom[i]);
    var W = 1200, FH = 17, PAD = 4, H = (root.maxDepth + 1) * FH + 2 * PAD, drawn = 0;
    var g0 = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "data-zoom": zoom.depth}, box);
    function frame(n, x, w, dim) {
      var y = H - PAD - (n.depth + 1) * FH;
      var g = svg("g", {"class": dim ? "f dim" : "f"}, g0);
      tip(g, n.name + " (" + msOf(n.total) + ", " + (100 * n.total / root.total).toFixed(2) + "%)");
      svg("rect", {x: x.toFixed(1), y: y, width: Math.max(w, 0.5).toFixed(1), height: FH - 1,
                   rx: 2, fill: hue(n.name)}, g);
      var fit = w > 12 ? Math.floor((w - 6) / 7) : 0;
      if (fit >= 3) {
        var label = n.name.length > fit ? n.name.slice(0, fit - 2) + ".." : n.name;
        svgText(g, x + 3, y + FH - 5, label);
      }
      g.addEventListener("click", function () {
        var path = [];
        for (var p = n; p && p.parent; p = p.parent) path.unshift(p.name);
        flameZoom = path;
        drawFlame();
      });
      drawn++;
    }
    for (var a = zoom.parent, chain = []; a; a = a.parent) chain.push(a);
    chain.forEach(function (a) { frame(a, PAD, W - 2 * PAD, true); });
    var scale = (W - 2 * PAD) / zoom.total;
    (function walk(n, x) {
      var w = n.total * scale;
      if (w < 0.5 || drawn >= MAX_FLAME_FRAMES) return;
      frame(n, x, w, false);
      n.kids.forEach(function (k) { walk(k, x); x += k.total * scale; });
    })(zoom, PAD);
    document.getElementById("flame-note").textContent =
      (zoom === root ? "" : "zoomed into " + zoom.name + "; ") + "click a frame to zoom";
  }

  function loadFlame() {
    return fetch(base + "/flamegraph.txt" + suffix, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error("flame graph: " + r.status); return r.text(); })
      .then(function (text) { flameTree = parseCollapsed(text); drawFlame(); })
      .catch(function (e) {
        document.getElementById("flame-note").textContent = "unavailable: " + e.message;
      });
  }

  document.getElementById("flame-reset").addEventListener("click", function () {
    flameZoom = [];
    drawFlame();
  });

  function render(d) {
    var totals = document.getElementById("totals");
    totals.textContent = "";
    card(totals, "Total Requests", d.total_requests);
    card(totals, "Total Queries", d.total_queries);
    card(totals, "Avg Queries/Req", d.avg_queries_per_request);
    card(totals, "Slow Queries", d.slow_query_count);
    card(totals, "N+1 Patterns", d.n_plus_one_count);
    card(totals, "Over Budget", d.totals.over_budget);
    card(totals, "5xx", d.totals.errors);

    d.routes.forEach(function (r) { r.errors = r.status["5xx"] || 0; });
    fill("routes", d.routes, [{key: "method"}, {key: "route"}, num("count"), num("errors"),
      num("p50_ms"), num("p95_ms"), num("p99_ms"), num("max_ms"), num("mean_queries"),
      num("mean_sql_ms"), num("n_plus_one"), num("over_budget")],
      function (r) { return r.over_budget > 0 || r.n_plus_one > 0; });
    fill("slow", d.recent_slow_queries, [num("duration_ms"), {key: "sql", cls: "sql"},
      {key: "route"}, {key: "request_id"}]);
    d.n_plus_one_patterns.forEach(function (p) { p.routes = p.routes.join(", "); });
    fill("nplusone", d.n_plus_one_patterns, [{key: "sql", cls: "sql"}, num("repeats"),
      num("requests"), num("max_in_request"), {key: "routes"}, {key: "callsite", cls: "sql"}]);
    fill("slowest", d.slowest_requests, [num("total_ms"), {key: "method"}, {key: "path"},
      num("status"), num("middleware_ms"), num("routing_ms"), num("handler_ms"), num("sql_ms"),
      num("sql_count"), breakdown], function (r) { return r.status >= 500; });

    fill("sampled", d.sampled_requests || [], [num("total_ms"), {key: "method"}, {key: "path"},
      num("status"), num("samples"), num("sampled_ms"), requestFlame, routeFlame]);

    var cluster = document.getElementById("cluster");
    cluster.hidden = !d.cluster;
    if (d.cluster) {
      document.getElementById("cluster-note").textContent =
        "(last " + d.cluster.since_s + " s" +
        (d.cluster.error ? "; unavailable: " + d.cluster.error : "") + ")";
      fill("fingerprints", d.cluster.by_fingerprint || [], [num("total_ms"), num("count"),
        num("mean_ms"), num("p95_ms"), num("max_ms"), num("processes"), num("hosts"),
        {key: "normalized_sql", cls: "sql"}, {key: "fingerprint"}, {key: "last_seen"}]);
    }

    renderTimeline(d.timeline);
    renderDists(d);

    var rt = document.getElementById("runtime");
    rt.textContent = "";
    card(rt, "memory (bytes)", d.memory.bytes);
    card(rt, "allocator", d.memory.allocator);
    card(rt, "stored requests", d.store.size + " / " + d.store.capacity);
    card(rt, "clock", d.clock.source + ", " + d.clock.error_ppm + " ppm");
    card(rt, "slow query threshold (ms)", d.config.slow_query_threshold_ms);
    card(rt, "N+1 threshold", d.config.n_plus_one_threshold);
    card(rt, "version", d.version);
    document.getElementById("status").textContent =
      "updated " + new Date().toLocaleTimeString();
  }

  document.querySelectorAll("a[data-export]").forEach(function (a) {
    a.href = base + a.getAttribute("data-export") + suffix;
  });

  document.querySelectorAll("table.sortable th[data-key]").forEach(function (th) {
    th.addEventListener("click", function () {
      var table = th.closest("table");
      var prev = sortState[table.id];
      var dir = prev && prev.key === th.dataset.key && prev.dir === "desc" ? "asc" : "desc";
      sortState[table.id] = {key: th.dataset.key, dir: dir, num: th.hasAttribute("data-num")};
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", dir);
      if (table._rows) fill(table.id, table._rows, table._cells, table._flag);
    });
  });

  render(JSON.parse(document.getElementById("nprof-data").textContent));
  loadFlame();

  var period = Number(document.body.dataset.refresh) || 0;
  if (period > 0) {
    setInterval(function () {
      fetch(base + "/json" + suffix, {credentials: "same-origin", cache: "no-store"})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(render)
        .then(loadFlame)
        .catch(function (e) {
          document.getElementById("status").textContent = "refresh failed: " + e.message;
        });
    }, period * 1000);
  }
})();
