// A table row or card with data-href opens that page when clicked anywhere but on its own
// links, buttons, forms, dialogs and folded parts (on a phone it is the only wide enough target).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var row = event.target.closest("[data-href]");
    if (!row || event.defaultPrevented) return;
    if (event.target.closest("a, button, input, select, textarea, label, dialog, form, details, pre")) return;
    if (window.getSelection && String(window.getSelection()).length) return; // selecting text
    if (event.ctrlKey || event.metaKey) window.open(row.dataset.href, "_blank");
    else window.location.href = row.dataset.href;
  });
})();
