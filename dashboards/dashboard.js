// nanoprof dashboard: renders the JSON document embedded in the page (and, every
// data-refresh seconds, the one at <dashboard>/json) into the tables.  Every string goes in
// through textContent, never as markup; nothing is loaded from anywhere but this origin.
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
        num("mean_ms"), num("p95_ms"), num("max_ms"), {key: "normalized_sql", cls: "sql"},
        {key: "fingerprint"}, {key: "last_seen"}]);
    }

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

  var period = Number(document.body.dataset.refresh) || 0;
  if (period > 0) {
    setInterval(function () {
      fetch(base + "/json" + suffix, {credentials: "same-origin", cache: "no-store"})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(render)
        .catch(function (e) {
          document.getElementById("status").textContent = "refresh failed: " + e.message;
        });
    }, period * 1000);
  }
})();
