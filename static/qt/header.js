// The header's count of orders in progress follows the staff `orders` topic: each update (and
// each reconnect, after which missed updates are lost) re-reads the count, at most once a second.
(function () {
  "use strict";
  var badge = document.getElementById("nav-order-count");
  if (!badge || !window.QT || document.body.dataset.staff !== "1") return;
  var timer = null;
  var last = 0;

  function show(count) {
    badge.dataset.count = String(count);
    badge.textContent = window.QT.fmt.number(String(count));
    badge.hidden = !count;
  }

  function refresh() {
    timer = null;
    last = Date.now();
    fetch("/orders/count/", { credentials: "same-origin" })
      .then(function (r) {
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (body && typeof body.in_progress === "number") show(body.in_progress);
      })
      .catch(function () {});
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(refresh, Math.max(150, 1000 - (Date.now() - last)));
  }

  window.QT.live.subscribe("orders", schedule);
  var wasDown = false;
  window.QT.live.onState(function (state) {
    if (state !== "connected") {
      wasDown = wasDown || state === "reconnecting" || state === "offline";
      return;
    }
    if (wasDown) schedule();
    wasDown = false;
  });
})();
