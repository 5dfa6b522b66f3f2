/* The main menu folds behind its "Meny" button on a narrow screen (the CSS decides when: the
   button is only shown there). Without this script the menu simply stays open. */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js-nav");
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector(".nav-toggle");
    var menu = document.getElementById("main-menu");
    if (!button || !menu) { return; }
    function setOpen(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      menu.classList.toggle("is-open", open);
    }
    button.addEventListener("click", function () {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    });
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        button.focus();
      }
    });
  });
})();
