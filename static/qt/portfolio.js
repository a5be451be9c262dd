/* Account pages: the staff `portfolio` topic replaces an account's figures on every refresh;
 * on the account page each position is marked again on every `price:<instrument>` tick
 * (unrealised PnL = quantity × (mark − entry); value = quantity × mark) and the currency
 * totals follow. Figures from the server are exact decimal strings; the live marks are
 * display arithmetic only (the server's next read is the record). */
(function () {
  "use strict";
  var QT = window.QT;
  var fmt = QT.fmt;

  function num(value) {
    if (value === null || value === undefined || value === "") return null;
    var n = Number(value);
    return isFinite(n) ? n : null;
  }

  function show(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") {
      var rounded = Math.round(value * 1e8) / 1e8;
      return rounded.toLocaleString("en-US", { maximumFractionDigits: 8 });
    }
    return fmt.number(value);
  }

  function signClass(el, value) {
    el.classList.remove("up", "down");
    var n = num(value);
    if (n > 0) el.classList.add("up");
    else if (n < 0) el.classList.add("down");
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.className = cls || "num mono";
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  // ---- the dashboard's positions: marked on every tick ------------------------------------
  var dashEl = document.getElementById("dash-positions");
  if (dashEl) {
    dashEl.querySelectorAll("tr[data-instrument]").forEach(function (tr) {
      var instrument = tr.dataset.instrument;
      if (!instrument) return;
      QT.live.subscribe("price:" + instrument, function (msg) {
        var price = num((msg.data || msg).price);
        if (price === null) return;
        tr.querySelector(".p-mark").textContent = show(price);
        var entry = num(tr.dataset.entry);
        if (entry === null) return;
        var pnl = num(tr.dataset.quantity) * (price - entry);
        var cellEl = tr.querySelector(".p-unrealised");
        cellEl.dataset.raw = String(pnl);
        cellEl.textContent = show(pnl) + " " + (tr.dataset.currency || "");
        signClass(cellEl, pnl);
      });
    });
    return;
  }

  // ---- the accounts list ----------------------------------------------------------------
  var listEl = document.getElementById("accounts");
  if (listEl) {
    QT.live.subscribe("portfolio", function (msg) {
      var p = msg.portfolio;
      var row = listEl.querySelector('tr[data-account="' + p.account_id + '"]');
      if (!row) return;
      var equity = row.querySelector(".a-equity");
      var day = row.querySelector(".a-daypnl");
      equity.textContent = "";
      day.textContent = "";
      Object.keys(p.totals).forEach(function (cur) {
        var e = document.createElement("div");
        e.textContent = show(p.totals[cur].equity) + " " + cur;
        equity.appendChild(e);
        var d = document.createElement("div");
        d.textContent = show(p.totals[cur].day_pnl) + " " + cur;
        signClass(d, p.totals[cur].day_pnl);
        day.appendChild(d);
      });
      if (p.total_krw) {
        var k = document.createElement("div");
        k.className = "muted";
        k.textContent = "≈ " + show(p.total_krw) + " KRW";
        equity.appendChild(k);
      }
      row.querySelector(".a-positions").textContent = String(p.positions.length);
      var updated = row.querySelector(".a-updated");
      updated.textContent = "";
      var when = document.createElement("span");
      when.className = "mono";
      when.textContent = String(p.refreshed_at).slice(0, 19);
      updated.appendChild(when);
      if (p.error) {
        var err = document.createElement("div");
        err.className = "msg msg-error small a-error";
        err.textContent = p.error;
        updated.appendChild(err);
      }
    });
    listEl.addEventListener("click", function (ev) {
      var row = ev.target.closest("tr[data-href]");
      if (row && !ev.target.closest("a")) location.href = row.dataset.href;
    });
    return;
  }

  // ---- one account ------------------------------------------------------------------------
  var box = document.getElementById("portfolio");
  if (!box) return;
  var accountId = Number(box.dataset.account);
  var data = JSON.parse(document.getElementById("portfolio-data").textContent);
  var marks = {}; // instrument -> latest live price (number)
  var subscribed = {};

  function positionFigures(p) {
    var qty = num(p.quantity);
    var mark = marks[p.instrument] !== undefined ? marks[p.instrument] : num(p.mark_price);
    var entry = num(p.entry_price);
    var unrealised = mark !== null && entry !== null ? qty * (mark - entry) : num(p.unrealised_pnl);
    var value = mark !== null ? qty * mark : null;
    return { mark: mark, unrealised: unrealised, value: value };
  }

  function renderPositions() {
    var body = document.querySelector("#positions tbody");
    body.textContent = "";
    if (!data.positions.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, box.dataset.none || "–", "muted").colSpan = 11;
      body.appendChild(empty);
    }
    data.positions.forEach(function (p, i) {
      var tr = document.createElement("tr");
      tr.dataset.index = String(i);
      tr.dataset.instrument = p.instrument;
      cell(tr, p.market_type, "");
      var sym = cell(tr, "", "");
      var a = document.createElement("a");
      a.href = QT.instrumentUrl ? QT.instrumentUrl(p.instrument) : "/instruments/" + encodeURI(p.instrument) + "/";
      a.textContent = p.symbol;
      sym.appendChild(a);
      cell(tr, show(p.quantity));
      cell(tr, show(p.entry_price));
      cell(tr, "", "num mono p-mark");
      cell(tr, "", "num mono p-unrealised");
      cell(tr, show(p.realised_pnl));
      cell(tr, show(p.fees));
      cell(tr, show(p.leverage));
      cell(tr, show(p.liquidation_price));
      cell(tr, "", "num mono p-value");
      body.appendChild(tr);
      if (p.instrument && !subscribed[p.instrument]) {
        subscribed[p.instrument] = true;
        QT.live.subscribe("price:" + p.instrument, function (msg) {
          var price = num((msg.data || msg).price);
          if (price === null) return;
          marks[p.instrument] = price;
          updateMarks();
        });
      }
    });
    updateMarks();
  }

  function updateMarks() {
    var sums = {};
    data.positions.forEach(function (p, i) {
      var f = positionFigures(p);
      var tr = document.querySelector('#positions tr[data-index="' + i + '"]');
      if (tr) {
        tr.querySelector(".p-mark").textContent = show(f.mark);
        var u = tr.querySelector(".p-unrealised");
        u.textContent = show(f.unrealised);
        u.dataset.raw = f.unrealised === null ? "" : String(f.unrealised);
        signClass(u, f.unrealised);
        tr.querySelector(".p-value").textContent = show(f.value) + " " + p.currency;
      }
      var s = (sums[p.currency] = sums[p.currency] || { holdings: 0, margin: 0, unrealised: 0 });
      if (f.unrealised !== null) s.unrealised += f.unrealised;
      if (p.margin) s.margin += f.unrealised || 0;
      else if (f.value !== null) s.holdings += f.value;
    });
    Object.keys(data.totals).forEach(function (cur) {
      var row = document.querySelector('#p-totals tr[data-currency="' + cur + '"]');
      if (!row) return;
      var s = sums[cur] || { holdings: 0, margin: 0, unrealised: 0 };
      var t = data.totals[cur];
      row.querySelector(".t-holdings").textContent = show(s.holdings);
      var u = row.querySelector(".t-unrealised");
      u.textContent = show(s.unrealised);
      signClass(u, s.unrealised);
      row.querySelector(".t-equity").textContent = show(num(t.cash) + s.holdings + s.margin);
    });
  }

  function renderTotals() {
    var body = document.querySelector("#p-totals tbody");
    body.textContent = "";
    Object.keys(data.totals).forEach(function (cur) {
      var t = data.totals[cur];
      var tr = document.createElement("tr");
      tr.dataset.currency = cur;
      cell(tr, cur, "");
      cell(tr, show(t.equity), "num mono t-equity");
      cell(tr, show(t.cash));
      cell(tr, show(t.holdings_value), "num mono t-holdings");
      cell(tr, show(t.unrealised_pnl), "num mono t-unrealised");
      cell(tr, show(t.realised_pnl));
      cell(tr, show(t.fees));
      signClass(cell(tr, show(t.day_pnl), "num mono t-day"), t.day_pnl);
      body.appendChild(tr);
    });
    document.getElementById("p-refreshed").textContent = String(data.refreshed_at).slice(0, 19);
    var krw = document.getElementById("p-krw");
    var text = data.total_krw ? krw.dataset.label + ": " + show(data.total_krw) : "";
    if (data.unconverted.length) text += " (" + krw.dataset.unconverted + ": " + data.unconverted.join(", ") + ")";
    krw.textContent = text;
    var errors = document.getElementById("p-errors");
    errors.textContent = "";
    data.errors.forEach(function (e) {
      var li = document.createElement("li");
      li.className = "msg msg-error";
      li.textContent = e;
      errors.appendChild(li);
    });
  }

  function renderBalances() {
    var body = document.querySelector("#balances tbody");
    if (!data.balances.length) return; // keep the server's "no balances" row
    body.textContent = "";
    data.balances.forEach(function (b) {
      var tr = document.createElement("tr");
      cell(tr, b.market_type, "");
      cell(tr, b.asset, "");
      cell(tr, show(b.free));
      cell(tr, show(b.locked));
      body.appendChild(tr);
    });
  }

  /** The recent fills again (a refresh follows each fill). */
  function loadFills() {
    fetch(box.dataset.fillsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (fills) {
        if (!fills || !fills.length) return;
        var body = document.querySelector("#fills tbody");
        body.textContent = "";
        fills.forEach(function (f) {
          var tr = document.createElement("tr");
          var when = cell(tr, "", "mono small");
          var a = document.createElement("a");
          a.href = "/orders/" + f.order_id + "/";
          a.textContent = String(f.at).slice(0, 19);
          when.appendChild(a);
          cell(tr, f.market_type, "");
          cell(tr, f.symbol, "");
          cell(tr, f.side, "");
          cell(tr, show(f.quantity));
          cell(tr, show(f.price));
          cell(tr, f.fee ? show(f.fee) + " " + f.fee_currency : "–");
          body.appendChild(tr);
        });
      })
      .catch(function () {});
  }

  function apply(next) {
    data = next;
    renderTotals();
    renderBalances();
    renderPositions();
    loadFills();
  }

  QT.live.subscribe("portfolio", function (msg) {
    if (msg.portfolio && msg.portfolio.account_id === accountId) apply(msg.portfolio);
  });

  document.getElementById("p-refresh").addEventListener("click", function (ev) {
    var button = ev.currentTarget;
    button.disabled = true;
    fetch(box.dataset.refreshUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) apply(body); })
      .finally(function () { button.disabled = false; });
  });

  renderBalances();
  renderPositions();

  // ---- the equity curve ---------------------------------------------------------------------
  var curve = JSON.parse(document.getElementById("equity-curve").textContent);
  var chartEl = document.getElementById("equity-chart");
  var currencies = Object.keys(curve);
  if (!currencies.length || !window.LightweightCharts) {
    chartEl.style.height = "auto";
    chartEl.className = "muted small";
    chartEl.textContent = chartEl.dataset.empty;
    return;
  }
  var LWC = window.LightweightCharts;
  var chart = LWC.createChart(chartEl, {
    autoSize: true,
    layout: { background: { color: "#ffffff" }, textColor: "#344054" },
    grid: { vertLines: { color: "#f0f2f5" }, horzLines: { color: "#f0f2f5" } },
    timeScale: { borderColor: "#e3e6eb" },
  });
  var colors = ["#1d4ed8", "#d32f2f", "#2e7d32", "#ef6c00"];
  currencies.forEach(function (cur, i) {
    var series = chart.addSeries(LWC.LineSeries, {
      color: colors[i % colors.length], title: cur, priceScaleId: i === 0 ? "right" : "left",
    });
    series.setData(curve[cur].map(function (pt) { return { time: pt.day, value: Number(pt.equity) }; }));
  });
  if (currencies.length > 1) chart.priceScale("left").applyOptions({ visible: true });
  chart.timeScale().fitContent();
})();
