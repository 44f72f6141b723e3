/* The warning form: levels offered follow the chosen type (WARNINGS_TYPE_LEVELS), and a polygon is drawn on a
 * small map by clicking its vertices (click the first vertex again, or press 完成, to close it). The polygon
 * goes to the hidden field as GeoJSON (lon, lat); the server checks it (inside the district, not self-crossing). */
(function () {
  "use strict";
  var cfgNode = document.getElementById("wn-form-config");
  if (!cfgNode) return;
  var cfg = JSON.parse(cfgNode.textContent);
  var typeSel = document.getElementById("id_hazard_type");
  var levelSel = document.getElementById("id_level");

  function filterLevels() {
    var allowed = cfg.typeLevels[typeSel.value];
    Array.prototype.forEach.call(levelSel.options, function (opt) {
      if (!opt.value) return;
      opt.hidden = !!allowed && allowed.indexOf(opt.value) < 0;
      opt.disabled = opt.hidden;
    });
    if (levelSel.selectedOptions.length && levelSel.selectedOptions[0].disabled) levelSel.value = "";
  }
  typeSel.addEventListener("change", filterLevels);
  filterLevels();

  var el = document.getElementById("wn-draw-map");
  var field = document.getElementById("id_polygon");
  if (!el || !window.L) return;
  document.getElementById("wn-draw-hint").textContent = cfg.labels.hint;
  var map = L.map(el, {attributionControl: false}).setView(cfg.center, 10);
  fetch("/api/v1/regions/boundaries?level=town", {credentials: "same-origin"}).then(function (r) {
    return r.ok ? r.json() : null;
  }).then(function (fc) {
    if (fc) L.geoJSON(fc, {style: {color: "#7a8ca0", weight: 1, fillColor: "#eef3f8", fillOpacity: 0.5}}).addTo(map).bringToBack();
  });
  var points = [];
  var shape = null;
  var closed = false;

  function draw() {
    if (shape) map.removeLayer(shape);
    shape = null;
    if (!points.length) return;
    var latlngs = points.map(function (p) { return [p[1], p[0]]; });
    shape = closed ? L.polygon(latlngs, {color: "#d32f2f"}) : L.polyline(latlngs, {color: "#d32f2f", dashArray: "4"});
    shape.addTo(map);
  }

  function save() {
    if (closed && points.length >= 3) {
      var ring = points.concat([points[0]]);
      field.value = JSON.stringify({type: "Polygon", coordinates: [ring]});
    } else {
      field.value = "";
    }
  }

  if (field.value.trim()) {
    try {
      var g = JSON.parse(field.value);
      points = g.coordinates[0].slice(0, -1);
      closed = true;
      draw();
      map.fitBounds(shape.getBounds());
    } catch (e) { field.value = ""; }
  }

  map.on("click", function (ev) {
    if (closed) return;
    var p = [Math.round(ev.latlng.lng * 1e6) / 1e6, Math.round(ev.latlng.lat * 1e6) / 1e6];
    if (points.length >= 3) {
      var first = map.latLngToContainerPoint([points[0][1], points[0][0]]);
      if (first.distanceTo(ev.containerPoint) < 12) {
        closed = true;
        draw();
        save();
        return;
      }
    }
    points.push(p);
    draw();
  });

  var Control = L.Control.extend({
    onAdd: function () {
      var box = L.DomUtil.create("div", "leaflet-bar");
      var clear = L.DomUtil.create("a", "", box);
      clear.href = "#";
      clear.textContent = "×";
      clear.title = cfg.labels.clear;
      clear.setAttribute("role", "button");
      clear.setAttribute("aria-label", cfg.labels.clear);
      L.DomEvent.on(clear, "click", function (e) {
        L.DomEvent.preventDefault(e);
        L.DomEvent.stopPropagation(e);
        points = [];
        closed = false;
        draw();
        save();
      });
      return box;
    }
  });
  map.addControl(new Control({position: "topright"}));
})();
