/* A river basin's detail page: its outline over the village boundaries (no tile server needed). The outline is
 * read from the JSON block basin-outline-data (json_script); nothing from data is parsed as HTML. */
(function () {
  "use strict";
  var el = document.getElementById("basin-map");
  var data = document.getElementById("basin-outline-data");
  if (!el || !data || !window.L) {
    return;
  }
  var outline = JSON.parse(data.textContent);
  var map = L.map(el, {preferCanvas: true, attributionControl: false});
  var layer = L.geoJSON(outline, {style: {color: "#1565c0", weight: 2, fillColor: "#61b8ff", fillOpacity: 0.25}})
    .addTo(map);
  map.fitBounds(layer.getBounds(), {padding: [10, 10]});
  fetch("/api/v1/regions/boundaries?level=town", {credentials: "same-origin"})
    .then(function (r) {
      return r.ok ? r.json() : null;
    })
    .then(function (fc) {
      if (fc) {
        L.geoJSON(fc, {style: {color: "#7a8ca0", weight: 1, fillColor: "#eef3f8", fillOpacity: 0.5}})
          .addTo(map).bringToBack();
      }
    });
})();
