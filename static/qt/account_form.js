// Account admin form: show the fields the chosen venue uses (the server checks them anyway).
(function () {
  "use strict";
  var BROKERS = ["KIS", "KIWOOM"];
  var PASSPHRASE = ["OKX", "BITGET"];

  function show(selector, visible) {
    document.querySelectorAll(selector).forEach(function (el) {
      el.hidden = !visible;
      el.style.display = visible ? "" : "none";
    });
  }

  function update(select) {
    var code = (select.value || "").toUpperCase();
    var paper = code === "PAPER";
    var broker = BROKERS.indexOf(code) >= 0;
    show("fieldset.qt-venue-credentials", !paper);
    show(".form-row.field-passphrase", PASSPHRASE.indexOf(code) >= 0);
    show("fieldset.qt-venue-broker", broker);
    show("fieldset.qt-venue-crypto", !paper && !broker);
    show(".form-row.field-is_testnet", !paper);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_exchange");
    if (!select) return;
    select.addEventListener("change", function () { update(select); });
    update(select);
  });
})();
