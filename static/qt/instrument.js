/* Instrument page: daily candles + volume (REST daily API) and the live last price (/ws). */
(function () {
  "use strict";
  var QT = window.QT;
  var instrument = document.getElementById("quote").dataset.instrument;
  var chartEl = document.getElementById("chart");
  var statusEl = document.getElementById("chart-status");
  var LWC = window.LightweightCharts;
  var css = getComputedStyle(document.documentElement);
  var upColor = css.getPropertyValue("--up").trim() || "#d32f2f";
  var downColor = css.getPropertyValue("--down").trim() || "#1565c0";

  var wholeUnits = false; // set when every bar is an integer (KRW stocks): no decimals on the axis
  var chart = LWC.createChart(chartEl, {
    autoSize: true,
    localization: {
      priceFormatter: function (p) {
        return wholeUnits
          ? Math.round(p).toLocaleString("en-US")
          : p.toLocaleString("en-US", { maximumFractionDigits: 8 });
      },
    },
    layout: { background: { color: "#ffffff" }, textColor: "#344054" },
    grid: { vertLines: { color: "#f0f2f5" }, horzLines: { color: "#f0f2f5" } },
    rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.28 } },
    timeScale: { borderColor: "#e3e6eb" },
  });
  var candles = chart.addSeries(LWC.CandlestickSeries, {
    upColor: upColor, downColor: downColor, borderUpColor: upColor, borderDownColor: downColor,
    wickUpColor: upColor, wickDownColor: downColor,
  });
  var volume = chart.addSeries(LWC.HistogramSeries, {
    priceFormat: { type: "volume" }, priceScaleId: "volume", color: "#98a2b3",
  });
  chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });

  var lastBar = null;

  /** The bar list inside whatever envelope the daily API uses ({bars:[…]}, {data:[…]} or […]). */
  function barsOf(body) {
    if (Array.isArray(body)) return body;
    if (!body || typeof body !== "object") return [];
    var keys = ["bars", "data", "daily", "prices", "results", "items"];
    for (var i = 0; i < keys.length; i++) if (Array.isArray(body[keys[i]])) return body[keys[i]];
    return [];
  }

  function dayOf(value) {
    return String(value || "").slice(0, 10);
  }

  function toBars(list) {
    var byDay = {};
    list.forEach(function (b) {
      var day = dayOf(b.date || b.time || b.timestamp);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return;
      var bar = { time: day, open: Number(b.open), high: Number(b.high), low: Number(b.low), close: Number(b.close),
        volume: Number(b.volume || 0) };
      if ([bar.open, bar.high, bar.low, bar.close].every(isFinite)) byDay[day] = bar;
    });
    return Object.keys(byDay).sort().map(function (k) { return byDay[k]; });
  }

  function isoDay(d) {
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }

  function loadBars() {
    var to = new Date();
    var from = new Date(to.getTime() - 400 * 86400000);
    // Korean tickers use the seed's /api/kr/stocks/<ticker>/daily; EXCHANGE:SYMBOL ids the generic form.
    var path = instrument.indexOf(":") === -1 && instrument.indexOf("/") === -1
      ? "/api/kr/stocks/" + encodeURIComponent(instrument) + "/daily"
      : "/api/prices/" + encodeURI(instrument) + "/daily";
    var url = path + "?from=" + isoDay(from) + "&to=" + isoDay(to);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 404) return [];
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (body) {
        var bars = toBars(barsOf(body));
        var whole = bars.length > 0 && bars.every(function (b) {
          return Number.isInteger(b.open) && Number.isInteger(b.close) && Number.isInteger(b.high) && Number.isInteger(b.low);
        });
        wholeUnits = whole;
        if (whole) candles.applyOptions({ priceFormat: { type: "price", precision: 0, minMove: 1 } });
        candles.setData(bars);
        volume.setData(bars.map(function (b) {
          return { time: b.time, value: b.volume, color: b.close >= b.open ? upColor + "80" : downColor + "80" };
        }));
        chart.timeScale().fitContent();
        lastBar = bars.length ? bars[bars.length - 1] : null;
        chartEl.dataset.bars = String(bars.length);
        if (document.body.dataset.staff === "1" && bars.length) loadFills(bars);
        if (lastTick) onPrice(lastTick);
        statusEl.textContent = bars.length
          ? chartEl.dataset.loaded.replace("{count}", bars.length)
          : chartEl.dataset.empty;
      })
      .catch(function () {
        statusEl.textContent = chartEl.dataset.error;
        chartEl.dataset.bars = "error";
      });
  }

  /** Staff see every account's fills as markers on their day's candle (arrow up: buy). */
  function loadFills(bars) {
    var days = {};
    bars.forEach(function (b) { days[b.time] = true; });
    fetch("/api/fills?instrument=" + encodeURIComponent(instrument), {
      credentials: "same-origin", headers: { Accept: "application/json" },
    })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (fills) {
        var markers = [];
        fills.forEach(function (f) {
          var stamp = new Date(f.at);
          var day = isNaN(stamp.getTime()) ? "" : isoDay(stamp);
          if (!days[day]) return;
          var buy = f.side === "BUY";
          markers.push({
            time: day, position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
            color: buy ? upColor : downColor, text: (buy ? "B " : "S ") + QT.fmt.number(f.quantity) + " @ " + QT.fmt.number(f.price),
          });
        });
        markers.sort(function (a, b) { return a.time < b.time ? -1 : a.time > b.time ? 1 : 0; });
        if (LWC.createSeriesMarkers) LWC.createSeriesMarkers(candles, markers);
        chartEl.dataset.fills = String(markers.length);
      })
      .catch(function () { chartEl.dataset.fills = "error"; });
  }

  function setText(id, text) {
    document.getElementById(id).textContent = text;
  }

  var lastRaw = null;
  var liveLine = null;
  var lastTick = null;
  function onPrice(msg) {
    lastTick = msg;
    var d = msg.data || {};
    var price = d.price === undefined || d.price === null ? null : String(d.price);
    var el = document.getElementById("last-price");
    if (lastRaw !== null && price !== null && price !== lastRaw) {
      el.classList.remove("flash-up", "flash-down");
      void el.offsetWidth;
      el.classList.add(Number(price) > Number(lastRaw) ? "flash-up" : "flash-down");
    }
    lastRaw = price;
    el.textContent = QT.fmt.number(price);
    el.dataset.raw = price === null ? "" : price;
    var dir = QT.fmt.sign(d.change);
    ["last-price", "last-change", "last-rate"].forEach(function (id) {
      var e = document.getElementById(id);
      e.classList.toggle("up", dir > 0);
      e.classList.toggle("down", dir < 0);
    });
    setText("last-change", QT.fmt.signed(d.change));
    setText("last-rate", QT.fmt.rate(d.change_rate));
    setText("last-volume", QT.fmt.number(d.volume));
    setText("last-bidask", QT.fmt.number(d.bid_price) + " / " + QT.fmt.number(d.ask_price));
    var stamp = new Date(d.timestamp || msg.timestamp || "");
    setText("last-time", isNaN(stamp.getTime()) ? "–" : isoDay(stamp) + " " + stamp.toTimeString().slice(0, 8));
    var src = QT.sourceOf(d);
    QT.sourceBadges(document.getElementById("last-source"), src, d.stale);

    var n = Number(price);
    // The live price as a line across the chart, even on a day that has no bar yet.
    if (isFinite(n) && price !== null) {
      if (!liveLine) {
        liveLine = candles.createPriceLine({ price: n, color: "#f59e0b", lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "LIVE" });
      } else {
        liveLine.applyOptions({ price: n });
      }
    }
    // Move today's candle with the live price (a live or simulated tick on a day that has a bar).
    var day = isNaN(stamp.getTime()) ? "" : isoDay(stamp);
    if (src !== "daily_close" && lastBar && isFinite(n) && lastBar.time === day) {
      lastBar = { time: lastBar.time, open: lastBar.open, high: Math.max(lastBar.high, n), low: Math.min(lastBar.low, n),
        close: n, volume: lastBar.volume };
      candles.update(lastBar);
    }
  }

  QT.live.subscribe("price:" + instrument, onPrice);
  loadBars();
})();
