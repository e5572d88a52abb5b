// Render the math that pymdownx.arithmatex (generic: true) leaves as \( ... \) and \[ ... \],
// with the KaTeX bundled beside this file (no CDN: the site works offline).
(function () {
  function render(root) {
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true },
        ],
        throwOnError: false,
      });
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(function () { render(document); });  // mkdocs-material page loads
  } else {
    document.addEventListener("DOMContentLoaded", function () { render(document); });
  }
})();
