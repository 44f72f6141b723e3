// A small map on a record's detail page: the record's point over its town boundaries (no tile server needed).
// The record's name is data: the tooltip gets a node whose text is set, never a string Leaflet would parse as HTML.
(function () {
  const el = document.getElementById("detail-map");
  if (!el || !window.L) return;
  const p = JSON.parse(el.dataset.point);
  const map = L.map(el, { preferCanvas: true, attributionControl: false }).setView([p.lat, p.lon], 13);
  fetch("/api/v1/regions/boundaries?level=village", { credentials: "same-origin" })
    .then((r) => r.json())
    .then((fc) => L.geoJSON(fc, { style: { color: "#7a8ca0", weight: 1, fillColor: "#eef3f8", fillOpacity: 0.6 } }).addTo(map).bringToBack());
  const label = document.createElement("span");
  label.className = "detail-map-name";
  label.textContent = String(p.name == null ? "" : p.name);
  const color = /^#[0-9a-fA-F]{3,8}$/.test(p.color || "") ? p.color : "#1565c0";
  L.circleMarker([p.lat, p.lon], { radius: 9, color: "#fff", weight: 2, fillColor: color, fillOpacity: 1 })
    .addTo(map).bindTooltip(label, { permanent: true, direction: "top" });
})();
