/* 一张图 (command map). No inline script: settings come from the json_script block "map-config", data from
 * the map API (/api/v1/map/). Exposes window.tianmuMap = {map, layers} and sets body[data-map-ready="1"]
 * once the initially enabled layers are drawn (browser tests rely on both). */
(function () {
  "use strict";

  var cfgNode = document.getElementById("map-config");
  if (!cfgNode || !window.L) {
    return;
  }
  var cfg = JSON.parse(cfgNode.textContent);
  var T = cfg.labels || {};
  var NARROW_PX = 900;
  var FLY_ZOOM = 15;
  var UNCLUSTER_ZOOM = 16;  // markerClusterGroup's disableClusteringAtZoom
  var TOWN_FILLS = ["#e3edf7", "#e8f1e4", "#f4ecdf", "#efe6f3", "#e0f0ef", "#f5e6e6"];

  // ---- small helpers --------------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "className") {
          node.className = attrs[k];
        } else {
          node.setAttribute(k, attrs[k]);
        }
      });
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  // ECharts renders its tooltip as HTML: give it nodes whose text is set (category names are towns and types).
  function chartTooltip(params) {
    var list = Array.isArray(params) ? params : [params];
    var box = el("div", {className: "cmap-chart-tip"});
    if (list.length) {
      box.appendChild(el("div", null, list[0].axisValueLabel !== undefined ? list[0].axisValueLabel : list[0].name));
    }
    list.forEach(function (p) {
      var line = el("div");
      var dot = el("i", {className: "dot"});
      dot.style.background = safeColor(typeof p.color === "string" ? p.color : "");
      line.appendChild(dot);
      line.appendChild(el("span", null, p.seriesName || ""));
      line.appendChild(el("b", null, " " + fmt(p.value)));
      box.appendChild(line);
    });
    return box;
  }

  function safeColor(c) {
    return /^#[0-9a-fA-F]{3,8}$/.test(c || "") ? c : "#1565c0";
  }

  function fmt(n) {
    var v = Number(n || 0);
    return v.toLocaleString("zh-CN", {maximumFractionDigits: 1});
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}}).then(function (r) {
      if (!r.ok) {
        throw new Error(r.status + " " + url);
      }
      return r.json();
    });
  }

  function apiUrl(path, params) {
    var url = cfg.mapApi + path;
    if (params) {
      var qs = new URLSearchParams(params).toString();
      if (qs) {
        url += "?" + qs;
      }
    }
    return url;
  }

  function recordUrl(slug, id) {
    return cfg.recordUrl.replace("{slug}", encodeURIComponent(slug)).replace("{id}", encodeURIComponent(id));
  }

  var statusNode = document.getElementById("map-status");
  function status(text, isError) {
    if (!statusNode) {
      return;
    }
    statusNode.textContent = text || "";
    statusNode.classList.toggle("error", !!isError);
  }

  // ---- the map and its base layers ------------------------------------------------------------------------
  var map = L.map("map", {
    preferCanvas: true,
    center: cfg.center,
    zoom: cfg.zoom || 10,
    minZoom: 7,
    maxZoom: 18,
    zoomSnap: 0.25,
    zoomDelta: 0.5,
    wheelPxPerZoomLevel: 90,
    zoomControl: false,
    attributionControl: true,
  });
  map.attributionControl.setPrefix(false);
  // Zoom (bottom right, within a thumb's reach) and scale (bottom left) on every screen size.
  L.control.zoom({position: "bottomright"}).addTo(map);
  L.control.scale({position: "bottomleft", imperial: false, maxWidth: 120}).addTo(map);

  // Optional base tiles (天地图 with a key, or an offline package / any URL template): none by default — the
  // boundary map needs nothing from outside. The user's choice is kept in this browser.
  var tileSets = {};
  (cfg.baseTiles || []).forEach(function (t) {
    var opts = {attribution: t.attribution || "", maxZoom: t.maxZoom || 18, subdomains: t.subdomains || "abc"};
    var group = L.layerGroup([L.tileLayer(t.url, opts)]);
    if (t.labels) {
      group.addLayer(L.tileLayer(t.labels, {maxZoom: t.maxZoom || 18, subdomains: t.subdomains || "abc"}));
    }
    tileSets[t.key] = group;
  });
  var tilesOn = "";
  function setTiles(key) {
    if (tilesOn && tileSets[tilesOn]) {
      map.removeLayer(tileSets[tilesOn]);
    }
    tilesOn = tileSets[key] ? key : "";
    if (tilesOn) {
      tileSets[tilesOn].addTo(map);
      tileSets[tilesOn].eachLayer(function (l) {
        l.bringToBack();
      });
    }
    townLayer.setStyle({fillOpacity: tilesOn ? 0.15 : 0.85});
    document.querySelectorAll("input[data-tiles]").forEach(function (r) {
      r.checked = r.value === tilesOn;
    });
    try {
      window.localStorage.setItem("tianmu.map.tiles", tilesOn);
    } catch (e) { /* private mode: not remembered */ }
  }
  // Boundaries sit below the record markers; they are not interactive so they never catch clicks.
  map.createPane("towns").style.zIndex = 350;
  map.createPane("villages").style.zIndex = 360;

  function zoomClasses() {
    var z = map.getZoom();
    var c = map.getContainer();
    c.classList.toggle("cmap-z-low", z < 9);
    c.classList.toggle("cmap-z-village", z >= 12);
  }
  map.on("zoomend", zoomClasses);
  zoomClasses();

  // Keep the district clear of the open panels when fitting it into view.
  function panelPadding() {
    var left = 16;
    var right = 16;
    if (window.innerWidth >= NARROW_PX) {
      var lp = document.getElementById("layer-panel");
      var rp = document.getElementById("stats-panel");
      if (lp && !lp.classList.contains("collapsed")) {
        left += lp.offsetWidth + 10;
      }
      if (rp && !rp.classList.contains("collapsed")) {
        right += rp.offsetWidth + 10;
      }
    }
    return {paddingTopLeft: [left, 16], paddingBottomRight: [right, 16]};
  }

  var townIndex = 0;
  var townLayer = L.geoJSON(null, {
    pane: "towns",
    interactive: false,
    style: function () {
      var fill = TOWN_FILLS[townIndex++ % TOWN_FILLS.length];
      return {color: "#0d3b66", weight: 1.5, opacity: 0.8, fillColor: fill, fillOpacity: tilesOn ? 0.15 : 0.85};
    },
    onEachFeature: function (f, layer) {
      layer.bindTooltip(el("span", null, (f.properties && f.properties.name) || ""), {
        permanent: true, direction: "center", className: "cmap-label town", interactive: false,
      });
    },
  });
  var villageLayer = L.geoJSON(null, {
    pane: "villages",
    interactive: false,
    style: function () {
      return {color: "#4f6d8c", weight: 0.7, opacity: 0.8, dashArray: "3 3", fill: false};
    },
    onEachFeature: function (f, layer) {
      layer.bindTooltip(el("span", null, (f.properties && f.properties.name) || ""), {
        permanent: true, direction: "center", className: "cmap-label village", interactive: false,
      });
    },
  });
  var baseLayers = {towns: townLayer, villages: villageLayer};
  var baseLoaded = {};

  var savedTiles = null;
  try {
    savedTiles = window.localStorage.getItem("tianmu.map.tiles");
  } catch (e) { /* unavailable */ }
  setTiles(savedTiles !== null && (savedTiles === "" || tileSets[savedTiles]) ? savedTiles : (cfg.defaultBase || ""));
  document.querySelectorAll("input[data-tiles]").forEach(function (r) {
    r.addEventListener("change", function () {
      if (r.checked) {
        setTiles(r.value);
      }
    });
  });

  // A town's or a village's user: their own region outlined, and framed when the map opens.
  map.createPane("home").style.zIndex = 370;
  var homeLayer = L.geoJSON(null, {pane: "home", interactive: false,
    style: function () {
      return {color: "#c62828", weight: 3, opacity: 0.9, fill: false, dashArray: null};
    }}).addTo(map);
  var homeReady = Promise.resolve(null);
  if (cfg.home) {
    var homeUrl = cfg.boundariesApi + "?" + new URLSearchParams({level: cfg.home.level, parent: cfg.home.code});
    homeReady = getJSON(homeUrl).then(function (fc) {
      var own = (fc.features || []).filter(function (f) {
        return f.properties && f.properties.code === cfg.home.code;
      });
      homeLayer.addData({type: "FeatureCollection", features: own});
      return own.length ? homeLayer.getBounds() : null;
    }).catch(function () {
      return null;
    });
  }
  function homeBounds() {
    var b = cfg.home && cfg.home.bbox;
    return b ? L.latLngBounds([b[1], b[0]], [b[3], b[2]]) : null;
  }

  function loadBase(level) {
    if (baseLoaded[level]) {
      return baseLoaded[level];
    }
    var url = cfg.boundariesApi + "?" + new URLSearchParams({level: level === "towns" ? "town" : "village"});
    baseLoaded[level] = getJSON(url).then(function (fc) {
      baseLayers[level].addData(fc);
      return fc;
    }).catch(function (err) {
      delete baseLoaded[level];
      throw err;
    });
    return baseLoaded[level];
  }

  var showParam = new URLSearchParams(window.location.search).get("show");
  var townsReady = loadBase("towns").then(function () {
    townLayer.addTo(map);
    // "#lat,lon,zoom" focuses a place and ?show=slug:id a record (below); a town's or a village's user sees
    // their own region; everyone else the whole district.
    var focus = /^#(-?[\d.]+),(-?[\d.]+),(\d+)$/.exec(window.location.hash);
    var b = townLayer.getBounds();
    var home = homeBounds();
    if (focus) {
      map.setView([parseFloat(focus[1]), parseFloat(focus[2])], parseInt(focus[3], 10));
    } else if (showParam) {
      return;
    } else if (home && home.isValid()) {
      map.fitBounds(home, panelPadding());
    } else if (b.isValid()) {
      map.fitBounds(b, panelPadding());
    }
  }).catch(function () {
    status(T.load_failed, true);
  });

  document.querySelectorAll("input[data-base]").forEach(function (box) {
    box.addEventListener("change", function () {
      var level = box.getAttribute("data-base");
      if (!box.checked) {
        map.removeLayer(baseLayers[level]);
        return;
      }
      box.disabled = true;
      loadBase(level).then(function () {
        if (box.checked) {
          baseLayers[level].addTo(map);
        }
      }).catch(function () {
        box.checked = false;
        status(T.load_failed, true);
      }).then(function () {
        box.disabled = false;
      });
    });
  });

  // ---- record layers ---------------------------------------------------------------------------------------
  var layers = {};   // slug → Leaflet layer group (MarkerClusterGroup for dense kinds)
  var meta = {};     // slug → {slug, name, color, cluster, count, loaded: Promise}
  var popup = L.popup({maxWidth: 300, autoPanPadding: [40, 40]});
  window.tianmuMap = {map: map, layers: layers, meta: meta};

  function popupNode(slug, id, name, lines, ll) {
    var box = el("div", {className: "cmap-popup"});
    box.appendChild(el("b", {className: "cmap-popup-title"}, name));
    lines.forEach(function (line) {
      if (line) {
        box.appendChild(el("div", {className: "muted"}, line));
      }
    });
    box.appendChild(el("a", {href: recordUrl(slug, id), className: "cmap-popup-link"}, T.detail || "详情"));
    if (ll) {
      var near = el("button", {type: "button", className: "btn small secondary cmap-nearby-btn"}, T.nearby_here);
      near.addEventListener("click", function () {
        openNearby(ll.lng, ll.lat, name);
      });
      box.appendChild(near);
    }
    return box;
  }

  // A row's extra values (the layer's `fields`, after the type label) as {name: value}.
  function rowFields(info, row) {
    var out = {};
    (info.fields || []).forEach(function (name, i) {
      out[name] = row[5 + i];
    });
    return out;
  }

  // The lines under a feature's name: type and layer, then its state and figures (a shelter: 开放 · 空余床位 50).
  function featureLines(info, row) {
    var lines = [[row[4], info.name].filter(Boolean).join(" · ")];
    var fields = info.fields || [];
    if (!fields.length) {
      return lines;
    }
    var values = rowFields(info, row);
    var state = info.states && info.states[values[fields[0]]];
    var figures = fields.slice(state ? 1 : 0).filter(function (name) {
      return values[name] !== null && values[name] !== undefined;
    }).map(function (name) {
      return ((info.field_labels && info.field_labels[name]) || name) + " " + fmt(values[name]);
    });
    lines.push([state ? state.label : ""].concat(figures).filter(Boolean).join(" · "));
    return lines;
  }

  function openFeaturePopup(marker) {
    var row = marker.tmRow;
    var info = meta[marker.tmSlug] || {};
    popup.setLatLng(marker.getLatLng())
      .setContent(popupNode(marker.tmSlug, row[0], row[3], featureLines(info, row), marker.getLatLng())).openOn(map);
  }

  function clusterIcon(color) {
    return function (cluster) {
      var n = cluster.getChildCount();
      var size = n < 10 ? 30 : n < 100 ? 36 : n < 1000 ? 42 : 48;
      return L.divIcon({
        html: '<span style="background:' + safeColor(color) + '">' + Number(n) + "</span>",
        className: "cmap-cluster",
        iconSize: L.point(size, size),
      });
    };
  }

  function makeGroup(info) {
    var group;
    if (info.cluster && L.markerClusterGroup) {
      group = L.markerClusterGroup({
        chunkedLoading: true,
        chunkInterval: 120,
        chunkDelay: 30,
        showCoverageOnHover: false,
        maxClusterRadius: 50,
        disableClusteringAtZoom: UNCLUSTER_ZOOM,
        spiderfyOnMaxZoom: true,
        iconCreateFunction: clusterIcon(info.color),
        chunkProgress: function (done, total) {
          if (done === total && group.tmChunksDone) {
            group.tmChunksDone();
          }
        },
      });
    } else {
      group = L.featureGroup();
    }
    group.on("click", function (e) {
      var m = e.propagatedFrom || e.layer;
      if (m && m.tmRow) {
        openFeaturePopup(m);
      }
    });
    return group;
  }

  // A layer with states (a shelter's open / full / closed) colours each marker by its state; a closed one is
  // drawn hollow, so "where can people go" reads at a glance.
  function markerStyle(info, row) {
    var style = {radius: 6, color: "#ffffff", weight: 1.2, opacity: 1, fillColor: info.color, fillOpacity: 0.9,
      bubblingMouseEvents: false};
    var states = info.states || {};
    if (info.fields && info.fields.length && Object.keys(states).length) {
      var value = row[5];
      var state = states[value];
      if (state) {
        style.fillColor = safeColor(state.color);
        style.className = "cmap-state-" + String(value).replace(/[^a-z_]/g, "");
      }
      if (value === "closed") {
        style = {radius: 5, color: style.fillColor, weight: 2, opacity: 1, fillColor: "#ffffff", fillOpacity: 0.9,
          bubblingMouseEvents: false};
      }
    }
    return style;
  }

  function buildMarkers(info, features) {
    var out = new Array(features.length);
    for (var i = 0; i < features.length; i++) {
      var f = features[i];
      var m = L.circleMarker([f[2], f[1]], markerStyle(info, f));
      m.tmRow = f;
      m.tmSlug = info.slug;
      out[i] = m;
    }
    return out;
  }

  function setCount(slug, n, loaded) {
    var node = document.querySelector('[data-layer-count="' + slug + '"]');
    if (node) {
      node.textContent = fmt(n);
      if (loaded) {
        node.setAttribute("data-loaded", "1");
      }
    }
  }

  // Fetch a layer's features and draw them; the group must already be on the map for chunked clustering.
  function loadLayer(slug) {
    var info = meta[slug];
    if (info.loaded) {
      return info.loaded;
    }
    var item = document.querySelector('li[data-layer-item="' + slug + '"]');
    if (item) {
      item.classList.add("loading");
    }
    info.loaded = getJSON(apiUrl("layers/" + encodeURIComponent(slug))).then(function (data) {
      var group = layers[slug];
      var markers = buildMarkers(info, data.features || []);
      return new Promise(function (resolve) {
        if (info.cluster && group.addLayers && map.hasLayer(group)) {
          group.tmChunksDone = resolve;
          group.addLayers(markers);
        } else if (group.addLayers) {
          group.addLayers(markers);
          resolve();
        } else {
          markers.forEach(function (m) {
            group.addLayer(m);
          });
          resolve();
        }
      }).then(function () {
        group.tmChunksDone = null;
        setCount(slug, markers.length, true);
        return markers.length;
      });
    }).catch(function (err) {
      info.loaded = null;
      status(T.load_failed, true);
      throw err;
    }).finally(function () {
      if (item) {
        item.classList.remove("loading");
      }
    });
    return info.loaded;
  }

  function showLayer(slug, on) {
    var group = layers[slug];
    if (!on) {
      map.removeLayer(group);
      return Promise.resolve();
    }
    group.addTo(map);
    return loadLayer(slug);
  }

  function renderLayerList(list) {
    var ul = document.getElementById("map-layers");
    ul.textContent = "";
    var wanted = cfg.defaultLayers || [];
    list.forEach(function (info) {
      info.color = safeColor(info.color);
      meta[info.slug] = info;
      layers[info.slug] = makeGroup(info);
      var li = el("li", {className: "cmap-layer", "data-layer-item": info.slug});
      var label = el("label");
      var box = el("input", {type: "checkbox", "data-layer": info.slug, id: "layer-" + info.slug});
      box.checked = wanted.indexOf(info.slug) >= 0;
      var dot = el("i", {className: "dot"});
      dot.style.background = info.color;
      label.appendChild(box);
      label.appendChild(dot);
      label.appendChild(el("span", {className: "cmap-layer-name"}, info.name));
      label.appendChild(el("span", {className: "cmap-layer-count", "data-layer-count": info.slug}, fmt(info.count)));
      li.appendChild(label);
      var states = info.states || {};
      if (Object.keys(states).length) {
        var legend = el("div", {className: "cmap-legend"});
        Object.keys(states).forEach(function (value) {
          var key = el("span", {className: "cmap-legend-item"});
          var mark = el("i", {className: "dot" + (value === "closed" ? " hollow" : "")});
          mark.style.borderColor = safeColor(states[value].color);
          mark.style.background = value === "closed" ? "#fff" : safeColor(states[value].color);
          key.appendChild(mark);
          key.appendChild(el("span", null, states[value].label));
          legend.appendChild(key);
        });
        li.appendChild(legend);
      }
      ul.appendChild(li);
      box.addEventListener("change", function () {
        box.disabled = true;
        showLayer(info.slug, box.checked).catch(function () {
          box.checked = false;
          map.removeLayer(layers[info.slug]);
        }).then(function () {
          box.disabled = false;
        });
      });
    });
    var initial = list.filter(function (info) {
      return wanted.indexOf(info.slug) >= 0;
    }).map(function (info) {
      var box = document.querySelector('input[data-layer="' + info.slug + '"]');
      box.disabled = true;
      return showLayer(info.slug, true).catch(function () {
        box.checked = false;
      }).then(function () {
        box.disabled = false;
      });
    });
    return Promise.all(initial);
  }

  var layersReady = getJSON(apiUrl("layers")).then(function (data) {
    return renderLayerList(data.layers || []);
  }).catch(function () {
    var ul = document.getElementById("map-layers");
    ul.textContent = "";
    ul.appendChild(el("li", {className: "error"}, T.load_failed));
  });

  Promise.all([townsReady, layersReady, homeReady]).then(function () {
    document.body.dataset.mapReady = "1";
    if (showParam) {
      var parts = showParam.split(":");
      showRecord(parts[0], parts[1]);
    }
  });

  // ---- show a record ("show on the map" from a list, a detail page or the nearby panel) ---------------------
  var highlight = L.layerGroup().addTo(map);

  function ring(ll) {
    highlight.clearLayers();
    L.circleMarker(ll, {radius: 16, color: "#c62828", weight: 3, fill: false, interactive: false,
      className: "cmap-highlight"}).addTo(highlight);
  }

  // The record's marker, once its layer is on and drawn (the layer is switched on if it was off).
  function markerOf(slug, id) {
    var info = meta[slug];
    if (!info) {
      return Promise.resolve(null);
    }
    var box = document.querySelector('input[data-layer="' + slug + '"]');
    if (box && !box.checked) {
      box.checked = true;
    }
    return showLayer(slug, true).then(function () {
      var found = null;
      layers[slug].eachLayer(function (m) {
        if (m.tmRow && String(m.tmRow[0]) === String(id)) {
          found = m;
        }
      });
      return found;
    }).catch(function () {
      return null;
    });
  }

  function showRecord(slug, id) {
    if (!/^[a-z0-9_-]+$/.test(slug || "") || !/^\d+$/.test(String(id || ""))) {
      status(T.show_failed, true);
      return Promise.resolve(false);
    }
    return markerOf(slug, id).then(function (marker) {
      if (marker) {
        return marker;
      }
      // Not on a map layer (or not drawn): ask the record itself.
      return getJSON(cfg.apiRoot + encodeURIComponent(slug) + "/" + encodeURIComponent(id)).then(function (r) {
        return {record: r};
      });
    }).then(function (found) {
      if (found.record) {
        var r = found.record;
        var ll0 = L.latLng(r.lat, r.lon);
        ring(ll0);
        map.setView(ll0, Math.max(map.getZoom(), FLY_ZOOM), {animate: false});
        popup.setLatLng(ll0).setContent(popupNode(slug, r.id, r.name, [r.region_name, r.code], ll0)).openOn(map);
        return true;
      }
      // Close enough that clusters have opened (disableClusteringAtZoom), then ring it and open its popup.
      var marker = found;
      map.setView(marker.getLatLng(), Math.max(map.getZoom(), FLY_ZOOM, UNCLUSTER_ZOOM), {animate: false});
      ring(marker.getLatLng());
      openFeaturePopup(marker);
      document.body.dataset.shown = slug + ":" + id;
      return true;
    }).catch(function () {
      status(T.show_failed, true);
      return false;
    });
  }
  window.tianmuMap.showRecord = showRecord;
  window.tianmuMap.highlight = highlight;

  // ---- 周边资源 at a point: a map click, a searched place or coordinate -------------------------------------
  var nearbyPanel = document.getElementById("nearby-panel");
  var nearbyLayer = L.layerGroup().addTo(map);

  function fmtPoint(lat, lon) {
    return Number(lat).toFixed(5) + ", " + Number(lon).toFixed(5);
  }

  function drawNearby(center, data) {
    nearbyLayer.clearLayers();
    L.circle(center, {radius: data.radius, color: "#0d3b66", weight: 1.5, dashArray: "6 4", fillOpacity: 0.04,
      interactive: false}).addTo(nearbyLayer);
    L.circleMarker(center, {radius: 7, color: "#c62828", weight: 3, fillColor: "#fff", fillOpacity: 1,
      interactive: false}).addTo(nearbyLayer);
    (data.kinds || []).forEach(function (kind) {
      (kind.items || []).forEach(function (item) {
        var m = L.circleMarker([item.lat, item.lon], {radius: 9, color: safeColor(kind.color), weight: 3,
          fill: false, bubblingMouseEvents: false});
        m.on("click", function () {
          showRecord(kind.slug, item.id);
        });
        m.addTo(nearbyLayer);
      });
    });
  }

  function openNearby(lon, lat, title) {
    if (!nearbyPanel || !window.tianmuNearby) {
      return;
    }
    var ncfg = Object.assign({}, cfg.nearby, {lon: Number(lon), lat: Number(lat), title: title || ""});
    document.getElementById("nearby-point").textContent = (title ? title + " · " : "") + fmtPoint(lat, lon);
    nearbyPanel.hidden = false;
    document.getElementById("cmap").classList.add("nearby-open");
    if (window.innerWidth < NARROW_PX) {
      setCollapsed(document.getElementById("layer-panel"), true);
      setCollapsed(document.getElementById("stats-panel"), true);
    } else if (window.innerWidth < 1400) {
      setCollapsed(document.getElementById("stats-panel"), true);
    }
    map.closePopup();
    var center = L.latLng(lat, lon);
    updateSheet();
    window.tianmuNearby.mount(nearbyPanel, ncfg, {
      limit: 5,
      onShow: function (kind, item) {
        showRecord(kind.slug, item.id);
      },
      onData: function (data) {
        drawNearby(center, data);
        updateSheet();
        var bounds = L.latLngBounds([center]);
        nearbyLayer.eachLayer(function (l) {
          if (l.getBounds) {
            bounds.extend(l.getBounds());
          }
        });
        if (bounds.isValid()) {
          map.fitBounds(bounds, nearbyPadding());
        }
      },
    });
  }

  function nearbyPadding() {
    var pad = panelPadding();
    if (window.innerWidth < NARROW_PX && nearbyPanel && !nearbyPanel.hidden) {
      return {paddingTopLeft: [16, 70], paddingBottomRight: [16, nearbyPanel.offsetHeight + 16]};
    }
    if (nearbyPanel && !nearbyPanel.hidden) {
      pad.paddingTopLeft[0] += nearbyPanel.offsetWidth + 10;
    }
    return pad;
  }

  function closeNearby() {
    nearbyPanel.hidden = true;
    document.getElementById("cmap").classList.remove("nearby-open");
    nearbyLayer.clearLayers();
    updateSheet();
  }
  var closeBtn = document.getElementById("nearby-close");
  if (closeBtn) {
    closeBtn.addEventListener("click", closeNearby);
  }

  function pointPopup(ll, title) {
    var box = el("div", {className: "cmap-popup"});
    if (title) {
      box.appendChild(el("b", {className: "cmap-popup-title"}, title));
    }
    box.appendChild(el("div", {className: "muted"}, (T.point || "") + " " + fmtPoint(ll.lat, ll.lng)));
    var btn = el("button", {type: "button", className: "btn small cmap-nearby-btn"}, T.nearby_here);
    btn.addEventListener("click", function () {
      openNearby(ll.lng, ll.lat, title || "");
    });
    box.appendChild(btn);
    popup.setLatLng(ll).setContent(box).openOn(map);
  }

  map.on("click", function (e) {
    pointPopup(e.latlng, "");
  });
  window.tianmuMap.openNearby = openNearby;
  window.tianmuMap.homeLayer = homeLayer;
  window.tianmuMap.nearbyLayer = nearbyLayer;

  // ---- search ----------------------------------------------------------------------------------------------
  var searchForm = document.getElementById("map-search");
  var searchInput = document.getElementById("map-search-input");
  var resultsNode = document.getElementById("map-search-results");
  var searchSeq = 0;
  var searchTimer = null;

  function goTo(hit) {
    var ll = L.latLng(hit.lat, hit.lon);
    if (window.innerWidth < NARROW_PX) {
      setCollapsed(document.getElementById("layer-panel"), true);
    }
    if (hit.kind === "point" || hit.kind.indexOf("place:") === 0) {
      // A place: framed (a town or village by its extent), with 周边资源 one tap away.
      ring(ll);
      var title = hit.kind === "point" ? "" : hit.name;
      if (hit.bbox) {
        map.fitBounds(L.latLngBounds([hit.bbox[1], hit.bbox[0]], [hit.bbox[3], hit.bbox[2]]), panelPadding());
      } else {
        map.setView(ll, Math.max(map.getZoom(), FLY_ZOOM - 2));
      }
      pointPopup(ll, title);
      return;
    }
    showRecord(hit.kind, hit.id);
  }

  function showResults(hits) {
    resultsNode.textContent = "";
    resultsNode.hidden = false;
    if (!hits.length) {
      resultsNode.appendChild(el("li", {className: "muted"}, T.no_results));
      return;
    }
    hits.forEach(function (hit) {
      var li = el("li");
      var btn = el("button", {type: "button", className: "cmap-hit", "data-kind": hit.kind, "data-id": hit.id});
      var dot = el("i", {className: "dot"});
      dot.style.background = (meta[hit.kind] && meta[hit.kind].color) || "#607080";
      btn.appendChild(dot);
      btn.appendChild(el("span", {className: "cmap-hit-name"}, hit.name));
      btn.appendChild(el("small", {className: "muted"}, [hit.kind_name, hit.region_name].filter(Boolean).join(" · ")));
      btn.addEventListener("click", function () {
        goTo(hit);
      });
      li.appendChild(btn);
      resultsNode.appendChild(li);
    });
  }

  function runSearch() {
    var q = searchInput.value.trim();
    var seq = ++searchSeq;
    if (!q) {
      resultsNode.hidden = true;
      resultsNode.textContent = "";
      return;
    }
    resultsNode.hidden = false;
    resultsNode.textContent = "";
    resultsNode.appendChild(el("li", {className: "muted"}, T.searching));
    getJSON(apiUrl("search", {q: q})).then(function (hits) {
      if (seq === searchSeq) {
        showResults(Array.isArray(hits) ? hits : hits.results || []);
      }
    }).catch(function () {
      if (seq === searchSeq) {
        resultsNode.textContent = "";
        resultsNode.appendChild(el("li", {className: "error"}, T.load_failed));
      }
    });
  }

  if (searchForm) {
    searchForm.addEventListener("submit", function (e) {
      e.preventDefault();
      clearTimeout(searchTimer);
      runSearch();
    });
    searchInput.addEventListener("input", function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(runSearch, 350);
    });
    searchInput.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        searchInput.value = "";
        runSearch();
      }
    });
  }

  // ---- panels ----------------------------------------------------------------------------------------------
  function setCollapsed(panel, collapsed) {
    if (!panel) {
      return;
    }
    panel.classList.toggle("collapsed", collapsed);
    var btn = panel.querySelector("[data-toggle]");
    if (btn) {
      btn.setAttribute("aria-expanded", collapsed ? "false" : "true");
    }
    if (!collapsed && panel.id === "stats-panel") {
      renderCharts();
    }
    updateSheet();
  }

  // On a phone an open panel is a bottom sheet: the map's controls move up above it.
  function updateSheet() {
    var root = document.getElementById("cmap");
    if (!root) {
      return;
    }
    var sheet = null;
    if (window.innerWidth < NARROW_PX) {
      document.querySelectorAll(".cmap-panel").forEach(function (p) {
        var open = p.id === "nearby-panel" ? !p.hidden : !p.classList.contains("collapsed");
        if (open) {
          sheet = p;
        }
      });
    }
    root.classList.toggle("sheet-open", !!sheet);
    root.style.setProperty("--sheet-h", sheet ? sheet.offsetHeight + "px" : "0px");
  }
  window.addEventListener("resize", updateSheet);

  document.querySelectorAll("[data-toggle]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var panel = document.getElementById(btn.getAttribute("data-toggle"));
      var collapse = !panel.classList.contains("collapsed");
      if (!collapse && window.innerWidth < NARROW_PX) {
        // On a phone the panels would cover each other: one sheet at a time.
        document.querySelectorAll(".cmap-panel").forEach(function (p) {
          if (p !== panel && p.id !== "nearby-panel") {
            setCollapsed(p, true);
          }
        });
        if (nearbyPanel && !nearbyPanel.hidden) {
          closeNearby();
        }
      }
      setCollapsed(panel, collapse);
    });
  });
  if (window.innerWidth < NARROW_PX) {
    setCollapsed(document.getElementById("layer-panel"), true);
    setCollapsed(document.getElementById("stats-panel"), true);
  }

  // ---- statistics (ECharts) --------------------------------------------------------------------------------
  var statsPanel = document.getElementById("stats-panel");
  var kindSelect = document.getElementById("stats-kind");
  var statsByKind = {};
  var charts = {};

  function chartFor(id) {
    if (!window.echarts) {
      return null;
    }
    var node = document.getElementById(id);
    if (!node) {
      return null;
    }
    if (!charts[id]) {
      charts[id] = echarts.init(node, null, {renderer: "canvas"});
    }
    return charts[id];
  }

  // A horizontal bar chart: long Chinese category names stay readable on any width.
  function barChart(id, names, values, color, seriesName) {
    var node = document.getElementById(id);
    if (!node) {
      return;
    }
    node.style.height = Math.max(120, names.length * 24 + 40) + "px";
    var chart = chartFor(id);
    if (!chart) {
      return;
    }
    chart.resize();
    if (!names.length) {
      chart.clear();
      chart.setOption({title: {text: T.no_data, left: "center", top: "middle",
        textStyle: {color: "#8a99a8", fontSize: 13, fontWeight: "normal"}}}, true);
      return;
    }
    chart.setOption({
      animationDuration: 400,
      grid: {left: 8, right: 44, top: 6, bottom: 6, containLabel: true},
      tooltip: {trigger: "axis", axisPointer: {type: "shadow"}, formatter: chartTooltip},
      xAxis: {type: "value", splitLine: {lineStyle: {color: "#e6ebf0"}}, axisLabel: {color: "#607080"}},
      yAxis: {type: "category", inverse: true, data: names, axisTick: {show: false},
        axisLabel: {color: "#1c2733", width: 130, overflow: "truncate"}},
      series: [{name: seriesName, type: "bar", data: values, barMaxWidth: 16, itemStyle: {color: color},
        label: {show: true, position: "right", color: "#1c2733", formatter: function (p) {
          return fmt(p.value);
        }}}],
    }, true);
  }

  function renderCharts() {
    if (!statsPanel || statsPanel.classList.contains("collapsed") || !kindSelect) {
      return;
    }
    var s = statsByKind[kindSelect.value];
    if (!s) {
      return;
    }
    var color = (meta[s.kind] && meta[s.kind].color) || "#1565c0";
    var sums = document.getElementById("stats-sums");
    if (sums) {
      var parts = [(T.total || "合计") + " " + fmt(s.total)];
      Object.keys(s.sums || {}).forEach(function (f) {
        parts.push(((s.sum_labels && s.sum_labels[f]) || f) + " " + fmt(s.sums[f]));
      });
      sums.textContent = parts.join(" · ");
    }
    barChart("chart-type", s.by_type.map(function (r) {
      return r.label || r.value || "—";
    }), s.by_type.map(function (r) {
      return r.count;
    }), color, T.count);
    barChart("chart-town", s.by_town.map(function (r) {
      return r.name;
    }), s.by_town.map(function (r) {
      return r.count;
    }), color, T.count);
    var shelters = statsByKind.shelters;
    var rows = shelters ? shelters.by_town : [];
    barChart("chart-capacity", rows.map(function (r) {
      return r.name;
    }), rows.map(function (r) {
      return r.capacity || 0;
    }), (meta.shelters && meta.shelters.color) || "#2e7d32", T.capacity);
  }

  function renderTotals(list) {
    var box = document.getElementById("stats-totals");
    box.textContent = "";
    list.forEach(function (s) {
      var btn = el("button", {type: "button", className: "cmap-total", "data-kind": s.kind});
      btn.appendChild(el("b", null, fmt(s.total)));
      btn.appendChild(el("span", null, s.name));
      btn.addEventListener("click", function () {
        kindSelect.value = s.kind;
        markTotals();
        renderCharts();
      });
      box.appendChild(btn);
    });
  }

  function markTotals() {
    document.querySelectorAll(".cmap-total").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-kind") === kindSelect.value);
    });
  }

  getJSON(apiUrl("stats")).then(function (data) {
    var list = data.kinds || [];
    kindSelect.textContent = "";
    list.forEach(function (s) {
      statsByKind[s.kind] = s;
      kindSelect.appendChild(el("option", {value: s.kind}, s.name));
    });
    if (statsByKind.shelters) {
      kindSelect.value = "shelters";
    }
    renderTotals(list);
    markTotals();
    renderCharts();
    statsPanel.dataset.statsReady = "1";
  }).catch(function () {
    var box = document.getElementById("stats-totals");
    box.textContent = "";
    box.appendChild(el("span", {className: "error"}, T.load_failed));
  });

  if (kindSelect) {
    kindSelect.addEventListener("change", function () {
      markTotals();
      renderCharts();
    });
  }

  function resizeCharts() {
    Object.keys(charts).forEach(function (id) {
      charts[id].resize();
    });
  }
  if (window.ResizeObserver && statsPanel) {
    new ResizeObserver(resizeCharts).observe(statsPanel);
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeCharts, 150);
  });
  if (statsPanel) {
    statsPanel.addEventListener("transitionend", resizeCharts);
  }
})();
