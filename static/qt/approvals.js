/* The approval queue, live over the staff "orders" topic.
 *
 * A waiting order the page does not show yet brings its group's card (server-rendered:
 * /approvals/<webhook>/<account>/); an order of a shown card that leaves pending_approval
 * (approved, rejected, expired) updates its row and closes the card's buttons. Each card counts
 * down to its deadline; the server decides expiry (a late approval is refused there).
 */
(function () {
  "use strict";
  var QT = window.QT;
  if (document.body.dataset.staff !== "1") return;
  var root = document.getElementById("approvals");
  var empty = document.getElementById("approvals-empty");
  var labels = JSON.parse(document.getElementById("status-labels").textContent);
  var T = document.getElementById("approval-i18n").dataset;
  var fetching = {};

  function refreshEmpty() {
    empty.hidden = !!root.querySelector('.approval-card[data-state="pending"]');
  }

  function closeCard(card, text) {
    if (card.dataset.state !== "pending") return;
    card.dataset.state = "decided";
    var actions = card.querySelector(".a-actions");
    if (actions) {
      actions.querySelectorAll("button").forEach(function (b) {
        b.disabled = true;
      });
    }
    var countdown = card.querySelector(".a-countdown");
    if (countdown) countdown.textContent = text || T.decided;
    refreshEmpty();
  }

  function applyRow(row, order) {
    var seen = Date.parse(row.dataset.updated || "");
    var incoming = Date.parse(order.updated_at || "");
    if (isFinite(seen) && isFinite(incoming) && incoming < seen) return;
    row.dataset.updated = order.updated_at || row.dataset.updated;
    row.dataset.status = order.status;
    var status = row.querySelector(".o-status");
    status.innerHTML = "";
    var badge = document.createElement("span");
    badge.className = "badge status-" + order.status;
    badge.textContent = labels[order.status] || order.status;
    status.appendChild(badge);
    if (order.message !== undefined) row.querySelector(".o-message").textContent = order.message || "–";
    if (order.status !== "pending_approval") closeCard(row.closest(".approval-card"));
  }

  function fetchCard(order) {
    var key = order.webhook_id + "-" + order.account_id;
    if (fetching[key] || document.querySelector('.approval-card[data-group="' + key + '"]')) return;
    fetching[key] = true;
    fetch("/approvals/" + order.webhook_id + "/" + order.account_id + "/", { credentials: "same-origin" })
      .then(function (r) {
        return r.status === 200 ? r.text() : "";
      })
      .then(function (html) {
        delete fetching[key];
        if (!html || document.querySelector('.approval-card[data-group="' + key + '"]')) return;
        var tmp = document.createElement("div");
        tmp.innerHTML = html.trim();
        var card = tmp.firstElementChild;
        if (!card) return;
        root.appendChild(card);
        tick();
        refreshEmpty();
      })
      .catch(function () {
        delete fetching[key];
      });
  }

  QT.live.subscribe("orders", function (msg) {
    var order = msg.order;
    if (!order || !order.order_id) return;
    var row = root.querySelector('tr[data-order-id="' + order.order_id + '"]');
    if (row) applyRow(row, order);
    else if (order.status === "pending_approval" && order.account_id) fetchCard(order);
  });

  function tick() {
    var now = Date.now();
    root.querySelectorAll('.approval-card[data-state="pending"]').forEach(function (card) {
      var deadline = Date.parse(card.dataset.expires || "");
      if (!isFinite(deadline)) return;
      var left = Math.max(0, Math.ceil((deadline - now) / 1000));
      var countdown = card.querySelector(".a-countdown");
      if (left > 0) {
        countdown.textContent = T.seconds.replace("{seconds}", left);
      } else {
        countdown.textContent = T.expired;
        var approve = card.querySelector(".a-approve");
        if (approve) approve.disabled = true;
      }
    });
  }
  tick();
  setInterval(tick, 1000);

  // After a reconnect, decisions taken while we were away are lost: re-read each open card.
  var wasDown = false;
  QT.live.onState(function (state) {
    if (state !== "connected") {
      wasDown = wasDown || state === "reconnecting" || state === "offline";
      return;
    }
    if (!wasDown) return;
    wasDown = false;
    root.querySelectorAll('.approval-card[data-state="pending"]').forEach(function (card) {
      fetch("/approvals/" + card.dataset.webhookId + "/" + card.dataset.accountId + "/", { credentials: "same-origin" })
        .then(function (r) {
          return r.status === 200 ? r.text() : "";
        })
        .then(function (html) {
          if (!html) closeCard(card);
        });
    });
  });
})();
