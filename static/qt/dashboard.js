/* Dashboard watchlist: one row per instrument, live over /ws (price:<id> topics). */
(function () {
  "use strict";
  var QT = window.QT;
  var STORAGE_KEY = "qt.watchlist";
  var defaults = JSON.parse(document.getElementById("default-watchlist").textContent);
  var tbody = document.querySelector("#watchlist tbody");
  var rows = {}; // instrument -> {tr, last}

  function loadList() {
    try {
      var saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
      if (Array.isArray(saved)) return saved.filter(function (x) { return typeof x === "string" && x; });
    } catch (e) {
      /* corrupt entry: fall back to the defaults */
    }
    return defaults.slice();
  }

  function saveList(list) {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(list));
    } catch (e) {
      /* private mode: the list just is not kept */
    }
  }

  function currentList() {
    return Object.keys(rows);
  }

  function cell(cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    return td;
  }

  function addRow(instrument) {
    if (rows[instrument]) return;
    var tr = document.createElement("tr");
    tr.dataset.instrument = instrument;
    var name = cell();
    var link = document.createElement("a");
    link.className = "instrument-name";
    link.href = QT.instrumentUrl(instrument);
    // Break after the exchange prefix on narrow screens: "UPBIT:" / "BTC/KRW".
    var colon = instrument.indexOf(":");
    link.appendChild(document.createTextNode(instrument.slice(0, colon + 1)));
    if (colon >= 0) link.appendChild(document.createElement("wbr"));
    link.appendChild(document.createTextNode(instrument.slice(colon + 1)));
    name.appendChild(link);
    var price = cell("num price");
    price.textContent = "–";
    var change = cell("num change");
    change.textContent = "–";
    var rate = cell("num rate");
    rate.textContent = "–";
    var volume = cell("num volume");
    volume.textContent = "–";
    var source = cell("source");
    source.innerHTML = '<span class="badge">' + QT.t("noData", "no data") + "</span>";
    var updated = cell("updated muted small");
    updated.textContent = "–";
    var actions = cell();
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn-light btn-small";
    remove.textContent = "×";
    remove.title = QT.t("remove", "Remove");
    remove.setAttribute("aria-label", QT.t("remove", "Remove") + " " + instrument);
    remove.addEventListener("click", function () {
      removeRow(instrument);
      saveList(currentList());
    });
    actions.appendChild(remove);
    [name, price, change, rate, volume, source, updated, actions].forEach(function (td) {
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
    rows[instrument] = { tr: tr, last: null };
    QT.live.subscribe("price:" + instrument, function (msg) {
      update(instrument, msg);
    });
  }

  function removeRow(instrument) {
    var row = rows[instrument];
    if (!row) return;
    row.tr.remove();
    delete rows[instrument];
    QT.live.unsubscribe("price:" + instrument);
  }

  function flash(el, direction) {
    el.classList.remove("flash-up", "flash-down");
    void el.offsetWidth; // restart the animation
    if (direction) el.classList.add(direction > 0 ? "flash-up" : "flash-down");
  }

  function update(instrument, msg) {
    var row = rows[instrument];
    if (!row) return;
    var d = msg.data || {};
    var tr = row.tr;
    var priceEl = tr.querySelector(".price");
    var price = d.price === undefined || d.price === null ? null : String(d.price);
    if (row.last !== null && price !== null && price !== row.last) {
      flash(priceEl, Number(price) > Number(row.last) ? 1 : -1);
    }
    row.last = price;
    priceEl.textContent = QT.fmt.number(price);
    priceEl.dataset.raw = price === null ? "" : price;
    var dir = QT.fmt.sign(d.change);
    ["price", "change", "rate"].forEach(function (cls) {
      var el = tr.querySelector("." + cls);
      el.classList.toggle("up", dir > 0);
      el.classList.toggle("down", dir < 0);
    });
    tr.querySelector(".change").textContent = QT.fmt.signed(d.change);
    tr.querySelector(".rate").textContent = QT.fmt.rate(d.change_rate);
    tr.querySelector(".volume").textContent = QT.fmt.number(d.volume);
    var src = QT.sourceOf(d);
    QT.sourceBadges(tr.querySelector(".source"), src, d.stale);
    tr.dataset.source = src;
    tr.dataset.stale = d.stale ? "1" : "0";
    tr.querySelector(".updated").textContent = QT.fmt.time(d.timestamp || msg.timestamp);
  }

  loadList().forEach(addRow);

  document.getElementById("watch-input").addEventListener("input", function (event) {
    event.target.setCustomValidity("");
  });

  document.getElementById("watch-add").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = document.getElementById("watch-input");
    var value = input.value.trim().toUpperCase();
    // The server's instrument id alphabet (prices.services.INSTRUMENT_RE, roughly).
    if (!/^[A-Z0-9][A-Z0-9._\-:\/]{0,79}$/.test(value)) {
      input.setCustomValidity(input.dataset.invalid || "?");
      input.reportValidity();
      return;
    }
    input.setCustomValidity("");
    addRow(value);
    saveList(currentList());
    input.value = "";
  });

  document.getElementById("watch-reset").addEventListener("click", function () {
    currentList().forEach(removeRow);
    try {
      localStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      /* ignore */
    }
    defaults.forEach(addRow);
  });
})();
