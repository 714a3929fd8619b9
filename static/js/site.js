/* Site-wide behaviour that the Content-Security-Policy keeps out of the templates: no inline
   handlers and no style attributes, so bar widths and chart label colours travel as data-*
   attributes and are applied here, on page load and on every piece htmx swaps in. */
(function () {
  "use strict";

  function each(root, selector, action) {
    if (root.matches && root.matches(selector)) { action(root); }
    root.querySelectorAll(selector).forEach(action);
  }

  function apply(root) {
    each(root, "[data-width]", function (node) { node.style.width = node.dataset.width + "%"; });
    each(root, "[data-fill]", function (node) { node.style.fill = node.dataset.fill; });
  }

  document.addEventListener("DOMContentLoaded", function () { apply(document); });
  document.addEventListener("htmx:load", function (event) { apply(event.target); });

  // A read-only link field: one click selects it all, ready to copy.
  document.addEventListener("click", function (event) {
    var field = event.target.closest && event.target.closest("[data-select-on-click]");
    if (field) { field.select(); }
  });
})();
