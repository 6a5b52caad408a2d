// Optional enhancements; every page works without this file.
(function () {
  "use strict";
  // Changing the search mode re-runs the current query.
  document.querySelectorAll("form.search-form select[name=mode]").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var q = sel.form.querySelector("input[name=q]");
      if (q && q.value.trim()) sel.form.submit();
    });
  });
  // "/" focuses the search box, as on most search sites.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var box = document.querySelector("form.search-form input[name=q]");
    if (box) { ev.preventDefault(); box.focus(); box.select(); }
  });
})();
