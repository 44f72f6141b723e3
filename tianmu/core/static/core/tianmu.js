// Every page: the collapsible top menu on narrow screens, and table cells labelled with their column's heading
// so that tables reflow into cards on a phone (tianmu.css, "Phones"). Tables added later (live refreshes) are
// labelled as they arrive.
(function () {
  "use strict";
  const header = document.querySelector(".topbar");
  const toggle = document.getElementById("navtoggle");
  if (header && toggle) {
    toggle.addEventListener("click", () => {
      const open = header.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && header.classList.contains("open")) { header.classList.remove("open"); toggle.setAttribute("aria-expanded", "false"); toggle.focus(); }
    });
  }

  document.addEventListener("click", (e) => {
    const printer = e.target.closest("[data-print]");
    if (printer) { e.preventDefault(); window.print(); }
  });

  function label(table) {
    const head = table.tHead && table.tHead.rows[0];
    if (!head) return;
    const names = Array.from(head.cells, (th) => th.textContent.trim());
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        if (row.cells.length === 1 && names.length > 1) { row.classList.add("single"); continue; }
        Array.from(row.cells).forEach((td, i) => { if (!td.hasAttribute("data-label") && names[i]) td.setAttribute("data-label", names[i]); });
      }
    }
    table.classList.add("reflow");
  }
  const labelAll = (root) => root.querySelectorAll("table.data").forEach(label);
  labelAll(document);
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType !== 1) continue;
      if (n.matches("table.data")) label(n);
      else if (n.matches("tr") && n.closest("table.data")) label(n.closest("table.data"));
      else labelAll(n);
    }
  }).observe(document.body, {childList: true, subtree: true});
})();
