/* 一张图 · 预警: active warnings as areas coloured by level (blue, yellow, orange, red; imported ones dashed),
 * filterable by type and level, with a list in the layer panel. Reloads when a warning event arrives on
 * /events/stream. Data from /api/v1/warnings/map (scoped to the user); config from map-layer-warnings
 * (warnings.views.map_layer_config). Sets body[data-warnings-ready] after each load; exposes window.tianmuWarnings. */
(function () {
  "use strict";
  var tm = window.tianmuMap;
  var cfgNode = document.getElementById("map-layer-warnings");
  if (!tm || !cfgNode || !window.L) return;
  var cfg = JSON.parse(cfgNode.textContent);
  var T = cfg.labels || {};
  var map = tm.map;
  var COLORS = {blue: "#1e6fd9", yellow: "#f2c200", orange: "#ff8f00", red: "#d32f2f"};
  var RANK = {blue: 1, yellow: 2, orange: 3, red: 4};
  map.createPane("warnings").style.zIndex = 420;  // under markers, over the base regions
  var layer = L.geoJSON(null, {pane: "warnings"});
  var toggle = document.getElementById("warnings-toggle");
  var typeSel = document.getElementById("warnings-type");
  var levelSel = document.getElementById("warnings-level");
  var list = document.getElementById("warnings-list");
  var count = document.getElementById("warnings-count");
  var state = {features: [], loads: 0};
  window.tianmuWarnings = {layer: layer, state: state, refresh: function () { return load(); }};

  function option(sel, value, label) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    sel.appendChild(o);
  }
  option(typeSel, "", T.all);
  cfg.types.forEach(function (t) { option(typeSel, t[0], t[1]); });
  option(levelSel, "", T.all);
  cfg.levels.forEach(function (l) { option(levelSel, l[0], l[1]); });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function popup(p) {
    var box = el("div", "wn-popup");
    box.appendChild(el("b", "", p.level_label + " · " + p.headline));
    box.appendChild(el("div", "muted", p.type_label + (p.area ? " · " + p.area : "")));
    if (p.external) box.appendChild(el("div", "muted", T.external + ":" + (p.source || "")));
    box.appendChild(el("div", "muted", T.expires + " " + (p.expires || "").slice(5, 16).replace("T", " ")));
    var a = el("a", "", T.open);
    a.href = p.url;
    box.appendChild(a);
    return box;
  }

  function render() {
    layer.clearLayers();
    var feats = state.features.slice().sort(function (a, b) {
      return RANK[a.properties.level] - RANK[b.properties.level];
    });
    feats.forEach(function (f) {
      var c = COLORS[f.properties.level] || "#1565c0";
      L.geoJSON(f, {
        pane: "warnings",
        style: {color: c, weight: 3, fillColor: c, fillOpacity: 0.35, dashArray: f.properties.external ? "6 4" : null}
      }).bindPopup(function () { return popup(f.properties); }).addTo(layer);
    });
    var seen = {};
    list.textContent = "";
    feats.reverse().forEach(function (f) {
      var p = f.properties;
      if (seen[p.id]) return;
      seen[p.id] = true;
      var li = el("li", "wn-map-item");
      li.appendChild(el("span", "wn-level lv-" + p.level, p.level_label));
      var a = el("a", "", p.headline);
      a.href = p.url;
      li.appendChild(a);
      if (p.external) li.appendChild(el("span", "muted", " · " + T.external));
      list.appendChild(li);
    });
    if (!list.children.length) list.appendChild(el("li", "muted", T.none));
    count.textContent = String(Object.keys(seen).length);
    if (toggle.checked) layer.addTo(map); else map.removeLayer(layer);
  }

  function load() {
    var q = [];
    if (typeSel.value) q.push("hazard_type=" + encodeURIComponent(typeSel.value));
    if (levelSel.value) q.push("level=" + encodeURIComponent(levelSel.value));
    return fetch(cfg.url + (q.length ? "?" + q.join("&") : ""), {credentials: "same-origin",
      headers: {Accept: "application/json"}}).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (fc) {
      state.features = fc.features || [];
      state.loads += 1;
      render();
      document.body.setAttribute("data-warnings-ready", String(state.loads));
    }).catch(function () {
      list.textContent = "";
      list.appendChild(el("li", "muted", T.load_failed));
    });
  }

  toggle.addEventListener("change", render);
  typeSel.addEventListener("change", load);
  levelSel.addEventListener("change", load);
  if (window.EventSource && cfg.eventsUrl) {
    var timer = null;
    var es = new EventSource(cfg.eventsUrl);
    es.onmessage = function (m) {
      if (m.data && m.data.indexOf("warnings.") < 0) return;
      clearTimeout(timer);
      timer = setTimeout(load, 1500);
    };
  }
  load();
})();
