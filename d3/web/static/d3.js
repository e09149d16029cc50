/* D3 dashboard: fetch the page's JSON read model, render it, refresh on a timer.
 *
 * Everything a miner can influence (hotkeys, reasons, tweet text) goes into the page as
 * text (textContent), never as markup. Plots are uPlot (vendored in static/vendor/). Each
 * drawn plot marks its container with data-drawn="<points>" so tests can tell it was drawn.
 */
(function () {
  "use strict";
  var body = document.body;
  var page = body.dataset.page;
  var api = body.dataset.api;
  var refreshS = Number(body.dataset.refresh || 15);
  var charts = {};

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    if (digits === undefined) return value.toLocaleString("en-US");
    return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function short(text, n) {
    text = String(text || "");
    return text.length > n ? text.slice(0, n) + "…" : text;
  }

  function section(id, title) {
    var existing = document.getElementById(id);
    if (existing) { var box = existing.querySelector(".inner"); box.textContent = ""; return box; }
    var holder = el("section", { id: id });
    if (title) holder.appendChild(el("h2", { text: title }));
    document.getElementById("content").appendChild(holder);
    var inner = el("div", { cls: "inner" });
    holder.appendChild(inner);
    return inner;
  }


  function cards(id, title, items) {
    var box = section(id, title);
    var grid = el("div", { cls: "cards" });
    items.forEach(function (item) {
      var value = el("div", { cls: "value " + (item.cls || ""), text: item.value });
      grid.appendChild(el("div", { cls: "card", "data-name": item.name || item.label },
        el("div", { cls: "label", text: item.label }), value));
    });
    box.appendChild(grid);
  }

  /* columns: [{label, key | value(row), num: bool, wrap: bool, cls(row), href(row)}] */
  function table(id, title, columns, rows, emptyText) {
    var box = section(id, title);
    if (!rows.length) { box.appendChild(el("div", { cls: "empty", text: emptyText || "nothing yet" })); return; }
    var head = el("tr");
    columns.forEach(function (c) { head.appendChild(el("th", { cls: c.num ? "num" : "", text: c.label })); });
    var tbody = el("tbody");
    rows.forEach(function (row) {
      var tr = el("tr");
      columns.forEach(function (c) {
        var value = c.value ? c.value(row) : row[c.key];
        var cls = (c.num ? "num " : "") + (c.wrap ? "wrap " : "") + (c.cls ? c.cls(row) : "");
        var cell = el("td", { cls: cls.trim() });
        if (c.href) cell.appendChild(el("a", { href: c.href(row), text: value }));
        else cell.textContent = value === null || value === undefined ? "–" : String(value);
        tr.appendChild(cell);
      });
      tbody.appendChild(tr);
    });
    box.appendChild(el("div", { cls: "scroll" }, el("table", {}, el("thead", {}, head), tbody)));
  }

  /* One uPlot per id, re-used across refreshes. series: [{label, values, color}] */
  function plot(id, title, xs, series, opts) {
    opts = opts || {};
    var box = document.getElementById(id + "-chart");
    if (!box) {
      var holder = section(id, title);
      box = el("div", { cls: "chart", id: id + "-chart" });
      holder.appendChild(box);
    }
    var data = [xs].concat(series.map(function (s) { return s.values; }));
    if (!xs.length) {
      if (charts[id]) { charts[id].destroy(); delete charts[id]; }
      box.textContent = "";
      box.appendChild(el("div", { cls: "empty", text: opts.empty || "nothing to plot yet" }));
      box.dataset.drawn = "0";
      return;
    }
    var width = Math.max(260, box.clientWidth - 10);
    if (charts[id]) { charts[id].setData(data); charts[id].setSize({ width: width, height: 240 }); return; }
    box.textContent = "";
    var config = {
      width: width,
      height: 240,
      scales: { x: { time: !!opts.time } },
      axes: [{ label: opts.xLabel || "" }, { label: opts.yLabel || "", size: 60 }],
      series: [{ label: opts.xLabel || "x" }].concat(series.map(function (s) {
        var line = { label: s.label, stroke: s.color || "#2457c5", width: 2,
                     points: { show: xs.length < 60 } };
        if (opts.bars) {
          line.paths = uPlot.paths.bars({ size: [0.7, 60] });
          line.fill = (s.color || "#2457c5") + "99";
          line.points = { show: false };
        }
        return line;
      })),
      hooks: { draw: [function (u) { box.dataset.drawn = String(u.data[0].length); }] },
    };
    charts[id] = new uPlot(config, data, box);
  }

  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      var box = document.getElementById(id + "-chart");
      if (box) charts[id].setSize({ width: Math.max(260, box.clientWidth - 10), height: 240 });
    });
  });

  function hotkeyLink(row) { return "/miner/" + encodeURIComponent(row.hotkey); }

  /* accepted; rejected (the miner's fault, it counts against its credibility); neutral
     (not judged on its merits: the validator's own failure, a manifest judged before). */
  function verdictOf(row) {
    if (row.accepted) return "accepted";
    return row.counts ? "rejected" : "neutral";
  }

  function verdictClass(row) {
    return { accepted: "ok", rejected: "bad", neutral: "neutral" }[verdictOf(row)];
  }

  var render = {
    leaderboard: function (doc) {
      cards("summary", null, [
        { label: "netuid", value: num(doc.netuid) },
        { label: "block", value: num(doc.block) },
        { label: "miners", value: num(doc.miners.length) },
        { label: "history", value: doc.caught_up ? "caught up" : "replaying", cls: doc.caught_up ? "ok" : "neutral" },
      ]);
      table("leaderboard", "Leaderboard", [
        { label: "rank", key: "rank", num: true },
        { label: "uid", key: "uid", num: true },
        { label: "hotkey", value: function (r) { return short(r.hotkey, 14); }, href: hotkeyLink },
        { label: "unique", value: function (r) { return num(r.unique); }, num: true },
        { label: "noise", value: function (r) { return num(r.noise, 1); }, num: true },
        { label: "credibility", value: function (r) { return num(r.credibility, 3); }, num: true },
        { label: "score", value: function (r) { return num(r.score, 1); }, num: true },
        { label: "rank steps", value: function (r) { return num(r.rank_steps, 2); }, num: true },
        { label: "weight (next)", value: function (r) { return num(r.weight, 4); }, num: true },
        { label: "weight on chain", value: function (r) { return num(r.chain_weight, 4); }, num: true },
      ], doc.miners, "no miner has committed yet");
      var legend = section("legend", "How the columns relate");
      legend.appendChild(el("p", { cls: "legend", text: doc.legend }));
      var ranked = doc.miners.filter(function (r) { return r.weight > 0 || (r.chain_weight || 0) > 0; });
      plot("weights", "Weight by rank", ranked.map(function (_, i) { return i + 1; }), [
        { label: "weight (next)", values: ranked.map(function (r) { return r.weight; }), color: "#2457c5" },
        { label: "on chain", values: ranked.map(function (r) { return r.chain_weight === null ? null : r.chain_weight; }), color: "#9a6700" },
      ], { xLabel: "rank", yLabel: "weight", empty: "no miner has a weight yet" });
    },

    miner: function (doc) {
      var row = doc.row || {};
      document.getElementById("title").textContent = "Miner " + doc.hotkey;
      cards("summary", null, [
        { label: "uid", value: num(doc.uid) },
        { label: "rank", value: num(row.rank) },
        { label: "unique", value: num(row.unique) },
        { label: "credibility", value: num(row.credibility, 3) },
        { label: "score", value: num(row.score, 1) },
        { label: "weight (next)", value: num(row.weight, 4) },
        { label: "weight on chain", value: num(row.chain_weight, 4) },
      ]);
      var credit = doc.credit;
      plot("credit", "Credit per period", credit.map(function (c) { return c.first_block; }), [
        { label: "credited", values: credit.map(function (c) { return c.credited; }), color: "#2457c5" },
        { label: "counted after the audit", values: credit.map(function (c) { return c.counted; }), color: "#1a7f37" },
      ], { xLabel: "block", yLabel: "tweets", empty: "no credit yet" });
      table("commitments", "Commitments", [
        { label: "block", key: "block", num: true },
        { label: "manifest", value: function (r) { return short(r.manifest, 12); } },
        { label: "verdict", value: verdictOf, cls: verdictClass },
        { label: "new unique", value: function (r) { return num(r.new_unique); }, num: true },
        { label: "reason", key: "reason", wrap: true },
      ], doc.commitments, "no commitment judged yet");
      table("audits", "Audits on X", [
        { label: "period", key: "period", num: true },
        { label: "checked", key: "checked", num: true },
        { label: "found", key: "found", num: true },
        { label: "altered", key: "altered", num: true },
        { label: "verdict", value: verdictOf, cls: verdictClass },
        { label: "reason", key: "reason", wrap: true },
      ], doc.audits, "no period audited yet");
    },

    network: function (doc) {
      var w = doc.weights, cr = doc.commit_reveal;
      cards("summary", null, [
        { label: "block", value: num(doc.block) },
        { label: "history", value: doc.caught_up ? "caught up" : "replaying", cls: doc.caught_up ? "ok" : "neutral" },
        { label: "queue", value: num(doc.queue) },
        { label: "index (credited IDs)", value: num(doc.index_ids), name: "index" },
        { label: "miners with weight", value: num(doc.miners_with_weight) },
        { label: "look-ups left now", value: num(doc.lookups.available), name: "lookups-left" },
        { label: "look-ups per day", value: num(doc.lookups.daily) },
        { label: "look-ups spent", value: num(doc.lookups.spent), name: "lookups-spent" },
        { label: "audits waiting", value: num(doc.audits_waiting) },
        { label: "audits provisional", value: num(doc.audits_provisional) },
      ]);
      cards("weights", "Weights", [
        { label: "last set at block", value: num(w.last_block), name: "last-weights" },
        { label: "last verdict", value: w.last ? (w.last.ok ? "ok" : (w.last.code || "refused")) : "–",
          cls: w.last ? (w.last.ok ? "ok" : "bad") : "" },
        { label: "message", value: w.last ? w.last.message : "no weight-set tried yet" },
        { label: "interval", value: num(w.interval) + " blocks" },
      ]);
      cards("commit-reveal", "Commit-reveal", [
        { label: "enabled", value: cr.enabled === null ? "unknown" : (cr.enabled ? "on" : "off") },
        { label: "waiting reveal", value: cr.pending_block === null ? "none" : "commit at block " + cr.pending_block },
        { label: "last reveal", value: cr.last ? cr.last.message : "none yet", cls: cr.last ? (cr.last.ok ? "ok" : "bad") : "" },
      ]);
      cards("health", "Health", [
        { label: "loops", value: doc.health.ok ? "healthy" : "stuck", cls: doc.health.ok ? "ok" : "bad", name: "loops" },
        { label: "chain errors", value: num(doc.chain.errors) },
        { label: "last chain error", value: doc.chain.last_error || "none" },
        { label: "redis errors", value: num(doc.redis.errors) },
        { label: "redis", value: doc.redis.down_for_s === null ? "up" : "down " + num(doc.redis.down_for_s, 0) + " s",
          cls: doc.redis.down_for_s === null ? "ok" : "bad" },
        { label: "last redis error", value: doc.redis.last_error || "none" },
      ]);
      var rounds = doc.rounds;
      plot("round-times", "Round durations", rounds.map(function (r) { return r.block; }), [
        { label: "seconds", values: rounds.map(function (r) { return r.seconds; }), color: "#2457c5" },
      ], { xLabel: "block", yLabel: "seconds", empty: "no round has finished yet" });
      table("rounds", "Recent rounds", [
        { label: "block", key: "block", num: true },
        { label: "seconds", value: function (r) { return num(r.seconds, 2); }, num: true },
        { label: "outcome", key: "outcome", cls: function (r) { return r.outcome === "ok" ? "ok" : "bad"; } },
        { label: "read", key: "read", num: true },
        { label: "accepted", key: "accepted", num: true },
        { label: "rejected", key: "rejected", num: true },
        { label: "new unique", key: "new_unique", num: true },
      ], rounds.slice().reverse().slice(0, 20), "no round has finished yet");
    },

    data: function (doc) {
      cards("summary", null, [
        { label: "rows", value: num(doc.rows), name: "rows" },
        { label: "files", value: num(doc.files) },
        { label: "days", value: num(doc.days.length) },
        { label: "miners", value: num(doc.miners.length) },
        { label: "index sha256", value: short(doc.index_sha256, 16) },
      ]);
      plot("volume", "Tweets per day", doc.days.map(function (d) { return Date.parse(d.day + "T00:00:00Z") / 1000; }), [
        { label: "tweets", values: doc.days.map(function (d) { return d.rows; }), color: "#2457c5" },
      ], { time: true, bars: true, xLabel: "day", yLabel: "tweets", empty: "the hub is empty" });
      table("languages", "Languages", [
        { label: "language", key: "lang" }, { label: "tweets", value: function (r) { return num(r.rows); }, num: true },
      ], doc.languages);
      table("hashtags", "Top hashtags", [
        { label: "hashtag", value: function (r) { return "#" + r.hashtag; } },
        { label: "tweets", value: function (r) { return num(r.rows); }, num: true },
      ], doc.hashtags, "no hashtags");
      table("miners", "Rows by first committer", [
        { label: "miner hotkey", key: "hotkey" }, { label: "rows", value: function (r) { return num(r.rows); }, num: true },
      ], doc.miners);
      table("sample", "Sample rows (newest)", [
        { label: "id", key: "id" }, { label: "created", key: "created_at" },
        { label: "account", key: "author_username" }, { label: "lang", key: "lang" },
        { label: "text", key: "text", wrap: true },
        { label: "likes", key: "like_count", num: true },
      ], doc.sample, "no rows yet");
      var load = section("load", "Load it");
      ["datasets", "pandas", "duckdb", "export"].forEach(function (k) {
        load.appendChild(el("div", { cls: "note", text: k }));
        load.appendChild(el("pre", {}, el("code", { text: doc.load[k] })));
      });
      load.appendChild(el("p", { cls: "note", text: doc.terms }));
    },
  };

  function setStatus(text, error) {
    var node = document.getElementById("status");
    node.textContent = text;
    node.className = error ? "error" : "";
  }

  function tick() {
    fetch(api, { cache: "no-store" })
      .then(function (response) {
        return response.json().then(function (doc) { return { ok: response.ok, status: response.status, doc: doc }; });
      })
      .then(function (r) {
        if (!r.ok) { setStatus((r.doc && r.doc.error) || ("HTTP " + r.status), true); return; }
        render[page](r.doc);
        body.dataset.rendered = String(Number(body.dataset.rendered || 0) + 1);
        setStatus("updated " + new Date().toLocaleTimeString() + "; refreshes every " + refreshS + " s");
      })
      .catch(function (error) { setStatus("cannot reach the server: " + error, true); })
      .then(function () { setTimeout(tick, refreshS * 1000); });
  }

  tick();
})();
