// Live event feed: EventSource resumes after the last id it saw, so a dropped connection loses nothing.
(function () {
  const table = document.getElementById("event-table");
  if (!table) return;
  const status = document.getElementById("live-status");
  const body = table.querySelector("tbody");
  const source = new EventSource(table.dataset.stream + "?after=" + encodeURIComponent(table.dataset.lastId || "0"));
  const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text || ""; if (cls) td.className = cls; return td; };
  source.onopen = () => { status.textContent = "● 实时"; status.style.background = "#e8f5e9"; };
  source.onerror = () => { status.textContent = "… 重连中"; status.style.background = "#fff8e1"; };
  source.onmessage = (msg) => {
    const e = JSON.parse(msg.data);
    const empty = body.querySelector("tr.empty"); if (empty) empty.remove();
    const p = e.payload || {};
    const tr = document.createElement("tr");
    tr.append(cell(e.time.slice(0, 19)), cell(e.type), cell(e.subject), cell(e.region), cell(e.actor),
      cell((p.name || "") + (p.count ? " ×" + p.count : ""), "muted"));
    body.prepend(tr);
    while (body.rows.length > 200) body.deleteRow(-1);
  };
})();
