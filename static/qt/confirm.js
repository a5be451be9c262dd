// Buttons with data-dialog open their confirmation <dialog>; [data-close] closes it. Only the
// dialog's own submit button posts the form (with confirm=1, which the server requires).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog]");
    if (opener && !opener.disabled) {
      var dialog = document.getElementById(opener.dataset.dialog);
      if (dialog && typeof dialog.showModal === "function") dialog.showModal();
      return;
    }
    var closer = event.target.closest("dialog [data-close]");
    if (closer) closer.closest("dialog").close();
  });
})();
