// Staff console: while a run or a re-indexing is in progress, update its progress bar every 2 s and reload the
// page once it ends. Without JavaScript the page offers a link to refresh instead.
(function () {
  "use strict";
  var box = document.querySelector("[data-state-url]");
  if (!box || box.getAttribute("data-running") !== "oui") return;
  var bar = box.querySelector("progress");
  var text = box.querySelector("[role=status]");
  function plural(n, word) { return n + " " + word + (n > 1 ? "s" : ""); }
  function poll() {
    fetch(box.getAttribute("data-state-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) return;
        if (bar && state.total) { bar.max = state.total; bar.value = state.done; }
        if (text) {
          text.textContent = state.total !== undefined && state.passed !== undefined
            ? state.state_fr + ", " + plural(state.done, "question") + " sur " + state.total + ", " + plural(state.passed, "réussie")
            : state.state_fr + (state.stage ? " : " + state.stage + " " + state.done + "/" + state.total : "");
        }
        if (state.state !== "running") { window.location.reload(); return; }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();
