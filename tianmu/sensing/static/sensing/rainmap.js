/* 一张图 · 雨量分布: the rainfall of a chosen window (1/3/6/12/24 h) up to a chosen time (default now) as graduated
 * gauge symbols (size and colour by GB/T 28592 grade) and an inverse-distance surface clipped to the user's region,
 * painted from the class grid of /api/v1/map/rainfall onto a canvas and laid over the map as an image. Off until
 * switched on; reloads every 5 minutes while shown ("now" only). Config from the JSON block map-layer-rainfall
 * (sensing.views.rain_layer_config). Sets body[data-rain-ready] after each load; exposes window.tianmuRain. */
(function () {
  "use strict";
  var tm = window.tianmuMap;
  var cfgNode = document.getElementById("map-layer-rainfall");
  if (!tm || !cfgNode || !window.L) {
    return;
  }
  var cfg = JSON.parse(cfgNode.textContent);
  var T = cfg.labels || {};
  var map = tm.map;
  var REFRESH_MS = 300000;
  map.createPane("rain").style.zIndex = 380;  // under markers, over the base map
  map.createPane("raingauges").style.zIndex = 630;
  var surface = L.layerGroup();
  var gauges = L.featureGroup();
  var state = {data: null, loads: 0, shown: {surface: false, gauges: false}};
  window.tianmuRain = {state: state, surface: surface, gauges: gauges, load: function () {
    return load();
  }};

  var windowSel = document.getElementById("rain-window");
  var atInput = document.getElementById("rain-at");
  (cfg.windows || []).forEach(function (h) {
    var opt = document.createElement("option");
    opt.value = String(h);
    opt.textContent = (T.window || "{h}").replace("{h}", String(h));
    if (h === 24) {
      opt.selected = true;
    }
    windowSel.appendChild(opt);
  });

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

  function hexToRgb(hex) {
    var n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function paintSurface(data) {
    surface.clearLayers();
    var g = data.grid;
    if (!g) {
      return;
    }
    var canvas = document.createElement("canvas");
    canvas.width = g.nx;
    canvas.height = g.ny;
    var ctx = canvas.getContext("2d");
    var img = ctx.createImageData(g.nx, g.ny);
    var rgb = data.classes.map(function (c) {
      return hexToRgb(c.color);
    });
    for (var i = 0; i < g.cells.length; i++) {
      var ch = g.cells.charCodeAt(i) - 48;  // "0".."9"; "." is below 0
      if (ch >= 0 && ch < rgb.length) {
        img.data[i * 4] = rgb[ch][0];
        img.data[i * 4 + 1] = rgb[ch][1];
        img.data[i * 4 + 2] = rgb[ch][2];
        img.data[i * 4 + 3] = 150;
      }
    }
    ctx.putImageData(img, 0, 0);
    var b = g.bbox;  // [west, south, east, north]
    L.imageOverlay(canvas.toDataURL("image/png"), [[b[1], b[0]], [b[3], b[2]]],
      {pane: "rain", className: "cmap-rain-surface", interactive: false}).addTo(surface);
  }

  function drawGauges(data) {
    gauges.clearLayers();
    data.gauges.forEach(function (row) {
      // [code, name, lon, lat, mm, town, class]
      var cls = row[6];
      var has = row[4] !== null && row[4] !== undefined;
      var color = has && cls >= 0 ? data.classes[cls].color : "#ffffff";
      var m = L.circleMarker([row[3], row[2]], {
        pane: "raingauges", radius: has ? 2.5 + 1.2 * Math.max(cls, 0) : 2.5, color: has ? "#37474f" : "#9e9e9e",
        weight: 1, fillColor: color, fillOpacity: has ? 0.95 : 0.4, dashArray: has ? null : "2,2"});
      var box = el("div", "cmap-popup");
      box.appendChild(el("b", "cmap-popup-title", row[1]));
      box.appendChild(el("div", "muted", [row[0], row[5]].filter(Boolean).join(" · ")));
      box.appendChild(el("div", null, has ? (row[4].toFixed(1) + " " + (T.mm || "mm") + " · " +
        (cls >= 0 ? data.classes[cls].name : T.below)) : T.no_data));
      m.bindPopup(box);
      m.bindTooltip(has ? row[4].toFixed(1) : "—", {direction: "top", offset: [0, -4], className: "cmap-rain-tip"});
      m.addTo(gauges);
    });
  }

  function drawLegend(data) {
    var box = document.getElementById("rain-legend");
    box.textContent = "";
    data.classes.forEach(function (c) {
      var item = el("span");
      var sw = el("i", "cmap-rain-key");
      sw.style.background = c.color;
      item.appendChild(sw);
      item.appendChild(document.createTextNode(c.name + " " + c.lo + (c.hi ? "–" + c.hi : "+")));
      box.appendChild(item);
    });
    var rows = data.gauges.filter(function (r) {
      return r[4] !== null && r[4] !== undefined;
    });
    var top = rows.reduce(function (a, r) {
      return !a || r[4] > a[4] ? r : a;
    }, null);
    document.getElementById("rain-stats").textContent = top ? (T.stats || "").replace("{n}", String(rows.length))
      .replace("{max}", top[4].toFixed(1)).replace("{name}", top[1]) : T.no_data;
    var count = document.querySelector("[data-rain-count]");
    if (count) {
      count.textContent = rows.length.toLocaleString("zh-CN");
    }
  }

  var loading = null;
  function load() {
    if (loading) {
      return loading;
    }
    var params = new URLSearchParams({window: windowSel.value});
    if (atInput.value) {
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
        paintSurface(data);
        drawGauges(data);
        drawLegend(data);
        state.loads += 1;
        document.body.setAttribute("data-rain-ready", String(state.loads));
      }).catch(function () {
        document.getElementById("rain-stats").textContent = T.load_failed;
      }).then(function () {
        loading = null;
      });
    return loading;
  }

  var groups = {surface: surface, gauges: gauges};
  document.querySelectorAll("input[data-rain]").forEach(function (box) {
    var name = box.getAttribute("data-rain");
    box.addEventListener("change", function () {
      state.shown[name] = box.checked;
      if (box.checked) {
        groups[name].addTo(map);
        if (!state.data) {
          load();
        }
      } else {
        map.removeLayer(groups[name]);
      }
    });
  });
  [windowSel, atInput].forEach(function (input) {
    input.addEventListener("change", function () {
      if (state.shown.surface || state.shown.gauges) {
        load();
      } else {
        state.data = null;
      }
    });
  });
  setInterval(function () {
    if (!document.hidden && !atInput.value && (state.shown.surface || state.shown.gauges)) {
      load();
    }
  }, REFRESH_MS);
})();
