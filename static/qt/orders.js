/* Live order status on the order list, order detail and webhook log (staff "orders" topic).
 *
 * Rows carry data-order-id and data-updated; an update older than what a row shows is ignored
 * (messages can cross a page load). An order the list does not show yet is fetched as a
 * server-rendered row that honours the list's filters (/orders/<id>/row/?<filters>).
 */
(function () {
  "use strict";
  var QT = window.QT;
  if (document.body.dataset.staff !== "1") return; // the live topics are staff-only
  var labelsEl = document.getElementById("status-labels");
  var labels = labelsEl ? JSON.parse(labelsEl.textContent) : {};
  var table = document.getElementById("orders");
  var latest = {}; // order id -> newest payload seen
  var fetching = {};

  function plain(value) {
    if (value === null || value === undefined || value === "") return "–";
    var s = String(value);
    if (/^-?\d+\.\d*$/.test(s)) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return QT.fmt.number(s);
  }

  function newer(order, row) {
    var seen = Date.parse(row.dataset.updated || "");
    var incoming = Date.parse(order.updated_at || "");
    return !(isFinite(seen) && isFinite(incoming) && incoming < seen);
  }

  function setCell(row, cls, text) {
    var el = row.querySelector("." + cls);
    if (el) el.textContent = text;
  }

  function apply(row, order) {
    if (!newer(order, row)) return;
    row.dataset.updated = order.updated_at || row.dataset.updated;
    if (row.dataset.status !== order.status) {
      row.classList.remove("flash-row");
      void row.offsetWidth;
      row.classList.add("flash-row");
    }
    row.dataset.status = order.status;
    var status = row.querySelector(".o-status");
    if (status) {
      status.innerHTML = "";
      var badge = document.createElement("span");
      badge.className = "badge status-" + order.status;
      badge.textContent = labels[order.status] || order.status;
      status.appendChild(badge);
    }
    setCell(row, "o-qty", plain(order.quantity));
    setCell(row, "o-filled", plain(order.filled_qty));
    setCell(row, "o-avg", plain(order.avg_price));
    if (order.message !== undefined) {
      var msg = String(order.message || "");
      var detail = row.classList.contains("detail-row");
      setCell(row, "o-message", msg.length > 80 && !detail ? msg.slice(0, 79) + "…" : msg || "–");
    }
    if (order.exchange_order_id) setCell(row, "o-exid", order.exchange_order_id);
  }

  // A cancel button only while the order rests at the venue.
  var RESTING = { open: 1, partially_filled: 1 };
  function toggleCancel(order) {
    var spans = document.querySelectorAll('.o-cancel[data-cancel-for="' + order.order_id + '"]');
    for (var i = 0; i < spans.length; i++) {
      var dialog = spans[i].querySelector("dialog");
      if (RESTING[order.status]) spans[i].hidden = false;
      else if (!(dialog && dialog.open)) spans[i].hidden = true;
    }
  }

  function applyEverywhere(order) {
    var rows = document.querySelectorAll('[data-order-id="' + order.order_id + '"]');
    for (var i = 0; i < rows.length; i++) apply(rows[i], order);
    toggleCancel(order);
    // The detail page shows some fields outside the status row.
    var detailRow = document.querySelector('.detail-row[data-order-id="' + order.order_id + '"]');
    if (detailRow) {
      ["o-qty", "o-filled", "o-avg", "o-message", "o-exid"].forEach(function (cls) {
        var el = document.querySelector("dl ." + cls);
        if (!el) return;
        if (cls === "o-qty") el.textContent = plain(order.quantity);
        if (cls === "o-filled") el.textContent = plain(order.filled_qty);
        if (cls === "o-avg") el.textContent = plain(order.avg_price);
        if (cls === "o-message") el.textContent = order.message || "–";
        if (cls === "o-exid" && order.exchange_order_id) el.textContent = order.exchange_order_id;
      });
    }
    return rows.length;
  }

  // The list's "N orders" counts a row the live updates added.
  function countOneMore() {
    var total = document.getElementById("order-total");
    if (!total) return;
    var count = (parseInt(total.dataset.count, 10) || 0) + 1;
    total.dataset.count = String(count);
    total.textContent = total.textContent.replace(/\d[\d,]*/, QT.fmt.number(String(count)));
  }

  function fetchRow(order) {
    if (!table || table.dataset.firstPage !== "1" || fetching[order.order_id]) return;
    fetching[order.order_id] = true;
    var query = table.dataset.query ? "?" + table.dataset.query : "";
    fetch("/orders/" + order.order_id + "/row/" + query, { credentials: "same-origin" })
      .then(function (r) {
        return r.status === 200 ? r.text() : "";
      })
      .then(function (html) {
        delete fetching[order.order_id];
        if (!html || document.querySelector('[data-order-id="' + order.order_id + '"]')) {
          if (latest[order.order_id]) applyEverywhere(latest[order.order_id]);
          return;
        }
        var tbody = table.querySelector("tbody");
        var tmp = document.createElement("tbody");
        tmp.innerHTML = html.trim();
        var row = tmp.firstElementChild;
        if (!row) return;
        tbody.insertBefore(row, tbody.firstChild);
        countOneMore();
        var empty = document.getElementById("orders-empty");
        if (empty) empty.remove();
        apply(row, latest[order.order_id]);
      })
      .catch(function () {
        delete fetching[order.order_id];
      });
  }

  QT.live.subscribe("orders", function (msg) {
    var order = msg.order;
    if (!order || !order.order_id) return;
    var prev = latest[order.order_id];
    if (!prev || Date.parse(order.updated_at || "") >= Date.parse(prev.updated_at || "")) latest[order.order_id] = order;
    if (!applyEverywhere(order)) fetchRow(order);
  });

  // After a reconnect, updates sent while we were away are lost: re-read the rows still moving.
  var FINAL = { filled: 1, cancelled: 1, rejected: 1, failed: 1 };
  var wasDown = false;
  QT.live.onState(function (state) {
    if (state !== "connected") {
      wasDown = wasDown || state === "reconnecting" || state === "offline";
      return;
    }
    if (!wasDown || !table) return;
    wasDown = false;
    var rows = table.querySelectorAll("tbody tr[data-order-id]:not(.detail-row)");
    Array.prototype.forEach.call(rows, function (row) {
      if (FINAL[row.dataset.status]) return;
      fetch("/orders/" + row.dataset.orderId + "/row/", { credentials: "same-origin" })
        .then(function (r) {
          return r.status === 200 ? r.text() : "";
        })
        .then(function (html) {
          if (!html || !row.parentNode) return;
          var tmp = document.createElement("tbody");
          tmp.innerHTML = html.trim();
          if (tmp.firstElementChild) row.parentNode.replaceChild(tmp.firstElementChild, row);
        });
    });
  });

  var banner = document.getElementById("new-events");
  if (banner) {
    QT.live.subscribe("webhooks", function () {
      banner.hidden = false;
    });
  }
})();
