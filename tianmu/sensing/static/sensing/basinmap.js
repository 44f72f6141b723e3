/* 一张图 · 流域面雨量: the river basins the user may read as outlines with their names, filled by the areal rainfall
 * class (GB/T 28592, as the rainfall distribution layer) of the rainfall panel's window and time. A basin with no
 * gauge inside or near is drawn hatched grey ("无站"), never as 0 mm. Data from /api/v1/map/basins; config from
 * the JSON block map-layer-basins (sensing.views.basin_layer_config). Names are set as text, never as HTML. Sets
 * body[data-basins-ready] after each load; exposes window.tianmuBasins. */
(function () {
  "use strict";
  var tm = window.tianmuMap;
  var cfgNode = document.getElementById("map-layer-basins");
  if (!tm || !cfgNode || !window.L) {
    return;
  }
  var cfg = JSON.parse(cfgNode.textContent);
  var T = cfg.labels || {};
  var map = tm.map;
  var REFRESH_MS = 300000;
  map.createPane("basins").style.zIndex = 390;  // over the rain surface, under markers
  var group = L.layerGroup();
  var state = {data: null, loads: 0, shown: false};
  window.tianmuBasins = {state: state, group: group, load: function () {
    return load();
  }};
  var windowSel = document.getElementById("rain-window");
  var atInput = document.getElementById("rain-at");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function draw(data) {
    group.clearLayers();
    var features = data.basins.features;
    // Parents first, so the sub-basins (drawn later) lie on top and take the clicks.
    features.sort(function (a, b) {
      return (a.properties.parent ? 1 : 0) - (b.properties.parent ? 1 : 0) || (a.id < b.id ? -1 : 1);
    });
    features.forEach(function (f) {
      var p = f.properties;
      var cls = p["class"];
      var has = p.value !== null && p.value !== undefined;
      var fill = has && cls >= 0 ? data.classes[cls].color : "#ffffff";
      var layer = L.geoJSON(f, {pane: "basins", style: {color: "#1565c0", weight: p.parent ? 1.5 : 3,
        fillColor: fill, fillOpacity: has ? 0.45 : 0.15, dashArray: has ? null : "4,4"}});
      var box = el("div", "cmap-popup");
      box.appendChild(el("b", "cmap-popup-title", p.name));
      box.appendChild(el("div", "muted", [p.code, p.system].filter(Boolean).join(" · ")));
      box.appendChild(el("div", null, has ? ((T.areal || "") + " " + p.value.toFixed(1) + " " + (T.mm || "mm") +
        (cls >= 0 ? " · " + data.classes[cls].name : "")) : T.no_gauge));
      if (p.process !== null && p.process !== undefined && has) {
        box.appendChild(el("div", "muted", (T.process || "") + " " + p.process.toFixed(1) + " " + (T.mm || "mm")));
      }
      var link = el("a", null, T.details);
      var params = new URLSearchParams({window: String(data.window)});
      if (atInput && atInput.value) {
        params.set("at", atInput.value);
      }
      link.href = cfg.detailUrl.replace("{code}", encodeURIComponent(p.code)) + "?" + params.toString();
      box.appendChild(link);
      layer.bindPopup(box);
      var label = el("span", null, p.name + (has ? " " + p.value.toFixed(1) : ""));
      layer.bindTooltip(label, {permanent: Boolean(p.parent), direction: "center",
        className: "cmap-basin-label"});
      layer.addTo(group);
    });
    var count = document.querySelector("[data-basin-count]");
    if (count) {
      count.textContent = String(features.length);
    }
  }

  var loading = null;
  function load() {
    if (loading) {
      return loading;
    }
    var params = new URLSearchParams({window: windowSel ? windowSel.value || "24" : "24"});
    if (atInput && atInput.value) {
      params.set("at", atInput.value);
    }
    loading = fetch(cfg.url + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        if (!r.ok) {
          throw new Error(String(r.status));
        }
        return r.json();
      }).then(function (data) {
        state.data = data;
        draw(data);
        state.loads += 1;
        document.body.setAttribute("data-basins-ready", String(state.loads));
      }).catch(function () {
        document.getElementById("basin-stats").textContent = T.load_failed;
      }).then(function () {
        loading = null;
      });
    return loading;
  }

  var box = document.querySelector("input[data-basins]");
  if (box) {
    box.addEventListener("change", function () {
      state.shown = box.checked;
      if (box.checked) {
        group.addTo(map);
        load();
      } else {
        map.removeLayer(group);
      }
    });
  }
  [windowSel, atInput].forEach(function (input) {
    if (input) {
      input.addEventListener("change", function () {
        if (state.shown) {
          load();
        } else {
          state.data = null;
        }
      });
    }
  });
  setInterval(function () {
    if (!document.hidden && state.shown && !(atInput && atInput.value)) {
      load();
    }
  }, REFRESH_MS);
})();
