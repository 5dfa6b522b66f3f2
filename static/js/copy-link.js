/* "Kopiera länken" (templates/links/check_link.html): copies the text of the element named by the
   button's data-copy to the clipboard and says so in the status beside it. Without this script
   the button stays hidden and the link is plain selectable text. */
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentElement.querySelector(".copy-status");
    if (!source || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(
        function () { status.textContent = status.getAttribute("data-copied"); },
        function () { status.textContent = status.getAttribute("data-failed"); }
      );
    });
  });
});
