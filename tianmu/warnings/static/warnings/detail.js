/* The warning page's map: its areas (region boundaries) and drawn polygon, coloured by the warning's level.
 * Names are data: tooltips get text nodes, never HTML. */
(function () {
  "use strict";
  var el = document.getElementById("wn-detail-map");
  var data = document.getElementById("wn-shapes");
  if (!el || !data || !window.L) return;
  var COLORS = {blue: "#1e6fd9", yellow: "#f2c200", orange: "#ff8f00", red: "#d32f2f"};
  var levelNode = document.getElementById("wn-level");
  var level = (levelNode.className.match(/lv-(\w+)/) || [])[1];
  var color = COLORS[level] || "#1565c0";
  var fc = JSON.parse(data.textContent);
  var map = L.map(el, {attributionControl: false}).setView([30.2361, 119.7153], 9);
  fetch("/api/v1/regions/boundaries?level=town", {credentials: "same-origin"}).then(function (r) {
    return r.ok ? r.json() : null;
  }).then(function (towns) {
    if (towns) L.geoJSON(towns, {style: {color: "#7a8ca0", weight: 1, fillColor: "#eef3f8", fillOpacity: 0.4}}).addTo(map).bringToBack();
  });
  if (!fc.features.length) return;
  var layer = L.geoJSON(fc, {
    style: {color: color, weight: 2, fillColor: color, fillOpacity: 0.35},
    onEachFeature: function (f, lyr) {
      if (f.properties && f.properties.name) {
        var span = document.createElement("span");
        span.textContent = String(f.properties.name);
        lyr.bindTooltip(span);
      }
    }
  }).addTo(map);
  map.fitBounds(layer.getBounds(), {padding: [16, 16], maxZoom: 12});
})();
