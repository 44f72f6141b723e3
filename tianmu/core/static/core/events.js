// Live activity feed: the stream (EventSource, resuming after the last id it saw) only says that something
// happened; the rows come from the page itself (?fragment=1&after=<newest shown>), rendered on the server as
// sentences in the reader's language, with the page's filters. Not on an older page (?before=).
(function () {
  "use strict";
  const table = document.getElementById("event-table");
  if (!table || new URLSearchParams(location.search).has("before")) return;
  const status = document.getElementById("live-status");
  const body = table.querySelector("tbody");
  const newest = () => { const row = body.querySelector("tr[data-id]"); return row ? row.dataset.id : "0"; };
  let timer = null, loading = false;
  async function load() {
    if (loading) { timer = setTimeout(load, 500); return; }
    loading = true;
    try {
      const r = await fetch(table.dataset.rows + "&after=" + encodeURIComponent(newest()), {credentials: "same-origin"});
      if (!r.ok) return;
      const html = await r.text();
      if (!html.trim()) return;
      const tpl = document.createElement("template");
      tpl.innerHTML = "<table><tbody>" + html + "</tbody></table>";
      const rows = Array.from(tpl.content.querySelectorAll("tr"));
      if (!rows.length) return;
      const empty = body.querySelector("tr.empty"); if (empty) empty.remove();
      rows.reverse().forEach((tr) => { tr.classList.add("flash"); body.prepend(tr); });
      while (body.rows.length > 200) body.deleteRow(-1);
      document.body.dataset.feedLoads = String(Number(document.body.dataset.feedLoads || 0) + 1);
    } catch (e) { /* the next message tries again */ } finally { loading = false; }
  }
  const source = new EventSource(table.dataset.stream + "?after=" + encodeURIComponent(table.dataset.lastId || "0"));
  source.onopen = () => { status.textContent = "● " + status.dataset.live; status.style.background = "#e8f5e9"; document.body.dataset.feedLive = "1"; };
  source.onerror = () => { status.textContent = "… " + status.dataset.retry; status.style.background = "#fff8e1"; };
  source.onmessage = () => { clearTimeout(timer); timer = setTimeout(load, 300); };
})();
