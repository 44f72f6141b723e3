/* 一张图 · 监测预警: sensors coloured by their current alarm level (grey = none, blue, yellow, orange, red) with the
 * latest value in the popup and a link to the sensor's chart; a ring around every sensor with open alarms and a
 * list of those alarms in the layer panel. Both layers reload when an alarm event arrives on /events/stream.
 * Data from /api/v1/map/sensors and /api/v1/map/alarms (scoped to the user); config from the JSON block
 * map-layer-sensing (sensing.views.map_layer_config). Sets body[data-sensing-ready]
 * after the first load and counts reloads in body[data-sensing-loads]; exposes window.tianmuSensing. */
(function () {
  "use strict";
  var tm = window.tianmuMap;
  var cfgNode = document.getElementById("map-layer-sensing");
  if (!tm || !cfgNode || !window.L) {
    return;
  }
  var cfg = JSON.parse(cfgNode.textContent);
  var T = cfg.labels || {};
  var map = tm.map;
  var COLORS = {"": "#9e9e9e", blue: "#1e6fd9", yellow: "#ffd600", orange: "#ff8f00", red: "#d32f2f"};
  var RANK = {"": 0, blue: 1, yellow: 2, orange: 3, red: 4};
  var LEVEL_NAMES = T.levels || {};
  var THROTTLE_MS = 3000;
  var REFRESH_MS = 60000;  // latest values change without alarm events
  var LIST_MAX = 60;

  map.createPane("sensing").style.zIndex = 640;  // above the record markers
  var sensorLayer = L.featureGroup();
  var alarmLayer = L.featureGroup();
  var popup = L.popup({maxWidth: 320, autoPanPadding: [40, 40]});
  var state = {sensors: [], alarms: [], bySensor: {}, loads: 0};
  window.tianmuSensing = {sensors: sensorLayer, alarms: alarmLayer, state: state, refresh: function () {
    return load();
  }};

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

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}}).then(function (r) {
      if (!r.ok) {
        throw new Error(r.status + " " + url);
      }
      return r.json();
    });
  }

  function alarmUrl(id) {
    return cfg.alarmUrl.replace("{id}", encodeURIComponent(id));
  }

  function sensorUrl(id) {
    return cfg.sensorUrl.replace("{id}", encodeURIComponent(id));
  }

  function fmtTime(iso) {
    return iso ? iso.slice(5, 16).replace("T", " ") : "";
  }

  function fmtNum(v) {
    return v === null || v === undefined ? "—" : String(Math.round(v * 1000) / 1000);
  }

  function levelTag(level, label) {
    var tag = el("span", "lvtag lv-" + (level || "none"), label || LEVEL_NAMES[level] || T.no_alarm || "");
    tag.style.background = COLORS[level || ""];
    return tag;
  }

  // ---- popups ---------------------------------------------------------------------------------------------
  function sensorPopup(row) {
    // [id, lon, lat, name, code, type, value, unit, observed_at, alarm_level, station, region]
    var box = el("div", "cmap-popup");
    var title = el("b", "cmap-popup-title", row[3]);
    if (row[9]) {
      title.appendChild(levelTag(row[9]));
    }
    box.appendChild(title);
    box.appendChild(el("div", "muted", [row[5], row[4], row[11]].filter(Boolean).join(" · ")));
    var value = el("div");
    if (row[6] === null || row[6] === undefined) {
      value.appendChild(el("span", "muted", T.no_reading));
    } else {
      value.appendChild(el("span", "cmap-value", fmtNum(row[6]) + " " + (row[7] || "")));
      value.appendChild(el("span", "muted", "  " + (T.observed || "") + " " + fmtTime(row[8])));
    }
    box.appendChild(value);
    var mine = state.bySensor[row[0]] || [];
    if (mine.length) {
      var ul = el("ul");
      mine.forEach(function (a) {
        var li = el("li");
        li.appendChild(levelTag(a.level, a.level_label));
        // The alarm's own page explains it (what triggered it, its history, the hazard zones it stands for).
        var link = el("a", null, a.rule_label + " " + fmtNum(a.value) + "/" + fmtNum(a.threshold) +
          (a.cleared ? " · " + T.cleared : a.status === "acknowledged" ? " · " + T.acknowledged : ""));
        link.href = alarmUrl(a.id);
        link.title = T.alarm_detail || "";
        li.appendChild(document.createTextNode(" "));
        li.appendChild(link);
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    var link = el("a", "cmap-popup-link", (T.sensor_chart || "") + " →");
    link.href = sensorUrl(row[0]);
    box.appendChild(link);
    return box;
  }

  function openSensor(id, latlng) {
    var row = null;
    for (var i = 0; i < state.sensors.length; i++) {
      if (state.sensors[i][0] === id) {
        row = state.sensors[i];
        break;
      }
    }
    if (row) {
      popup.setLatLng(latlng || [row[2], row[1]]).setContent(sensorPopup(row)).openOn(map);
    }
  }

  // ---- drawing ----------------------------------------------------------------------------------------------
  // Sensors are small diamonds (record layers and their clusters are discs), coloured by alarm level.
  var icons = {};
  function sensorIcon(level) {
    level = Object.prototype.hasOwnProperty.call(RANK, level) ? level : "";  // a known level, nothing else
    if (!icons[level]) {
      var size = level ? 13 : 9;
      icons[level] = L.divIcon({className: "cmap-sensor-icon", iconSize: [size, size],
        html: '<i class="cmap-sensor lv-' + (level || "none") + '"></i>'});
    }
    return icons[level];
  }

  function drawSensors() {
    sensorLayer.clearLayers();
    var rows = state.sensors.slice().sort(function (a, b) {
      return RANK[a[9] || ""] - RANK[b[9] || ""];  // red drawn last, on top
    });
    rows.forEach(function (row) {
      var level = row[9] || "";
      var m = L.marker([row[2], row[1]], {pane: "sensing", icon: sensorIcon(level), keyboard: false,
        zIndexOffset: RANK[level] * 100, title: row[3]});
      m.tmSensor = row[0];
      sensorLayer.addLayer(m);
    });
  }

  function drawAlarms() {
    alarmLayer.clearLayers();
    var seen = {};
    state.alarms.forEach(function (a) {
      // One ring per sensor, in the colour of its most severe alarm (the list is most severe first).
      if (seen[a.sensor_id]) {
        return;
      }
      seen[a.sensor_id] = true;
      var ring = L.circleMarker([a.lat, a.lon], {
        pane: "sensing", radius: 10, color: COLORS[a.level], weight: a.status === "open" ? 2.5 : 1.5,
        dashArray: a.status === "open" ? null : "4 3", fill: true, fillOpacity: 0, interactive: true,
      });
      ring.tmSensor = a.sensor_id;
      alarmLayer.addLayer(ring);
    });
  }

  function drawList() {
    var ul = document.getElementById("alarm-list");
    if (!ul) {
      return;
    }
    ul.textContent = "";
    if (!state.alarms.length) {
      ul.appendChild(el("li", "muted", T.no_alarms));
      return;
    }
    state.alarms.slice(0, LIST_MAX).forEach(function (a) {
      var li = el("li");
      var btn = el("button", "cmap-alarm");
      btn.type = "button";
      btn.setAttribute("data-alarm", a.id);
      var lv = el("span", "lv lv-" + a.level, a.level_label);
      lv.style.background = COLORS[a.level];
      btn.appendChild(lv);
      var text = el("span");
      text.appendChild(document.createTextNode(a.station_name || a.sensor_name));
      text.appendChild(el("small", null, [a.rule_label, fmtNum(a.value) + (a.unit ? " " + a.unit : ""),
        a.town_name || a.region_name, fmtTime(a.opened_at)].filter(Boolean).join(" · ")));
      btn.appendChild(text);
      btn.addEventListener("click", function () {
        var ll = L.latLng(a.lat, a.lon);
        map.once("moveend", function () {
          openSensor(a.sensor_id, ll);
        });
        map.flyTo(ll, Math.max(map.getZoom(), 13), {duration: 0.8});
      });
      li.appendChild(btn);
      ul.appendChild(li);
    });
    if (state.alarms.length > LIST_MAX) {
      var more = el("li", "muted");
      var link = el("a", null, (T.more_alarms || "").replace("{n}", String(state.alarms.length - LIST_MAX)));
      link.href = cfg.alarmsPage;
      more.appendChild(link);
      ul.appendChild(more);
    }
  }

  function setCount(name, n) {
    var node = document.querySelector('[data-sensing-count="' + name + '"]');
    if (node) {
      node.textContent = n.toLocaleString("zh-CN");
    }
  }

  // ---- loading ----------------------------------------------------------------------------------------------
  var loading = null;
  function load() {
    if (loading) {
      return loading;
    }
    loading = Promise.all([getJSON(cfg.mapApi + "sensors"), getJSON(cfg.mapApi + "alarms")]).then(function (res) {
      state.sensors = res[0].features || [];
      state.alarms = res[1].alarms || [];
      state.bySensor = {};
      state.alarms.forEach(function (a) {
        (state.bySensor[a.sensor_id] = state.bySensor[a.sensor_id] || []).push(a);
      });
      drawSensors();
      drawAlarms();
      drawList();
      setCount("sensors", state.sensors.length);
      setCount("alarms", state.alarms.length);
      state.loads += 1;
      document.body.setAttribute("data-sensing-loads", String(state.loads));
      document.body.setAttribute("data-sensing-ready", "1");
    }).catch(function () {
      var ul = document.getElementById("alarm-list");
      if (ul) {
        ul.textContent = "";
        ul.appendChild(el("li", "error", T.load_failed));
      }
    }).then(function () {
      loading = null;
    });
    return loading;
  }

  [sensorLayer, alarmLayer].forEach(function (group) {
    group.on("click", function (e) {
      var m = e.propagatedFrom || e.layer;
      if (m && m.tmSensor) {
        openSensor(m.tmSensor, m.getLatLng());
      }
    });
  });

  var layers = {sensors: sensorLayer, alarms: alarmLayer};
  document.querySelectorAll("input[data-sensing]").forEach(function (box) {
    var group = layers[box.getAttribute("data-sensing")];
    if (box.checked) {
      group.addTo(map);
    }
    box.addEventListener("change", function () {
      if (box.checked) {
        group.addTo(map);
      } else {
        map.removeLayer(group);
      }
    });
  });
  load();
  setInterval(function () {
    if (!document.hidden) {
      load();
    }
  }, REFRESH_MS);

  // ---- live: reload on alarm events -------------------------------------------------------------------------
  if (window.EventSource && cfg.eventsUrl) {
    var timer = null;
    var source = new EventSource(cfg.eventsUrl);
    source.onmessage = function (msg) {
      var event;
      try {
        event = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      if (event && typeof event.type === "string" && event.type.indexOf("sensing.alarm.") === 0 && !timer) {
        timer = setTimeout(function () {
          timer = null;
          load();
        }, THROTTLE_MS);
      }
    };
  }
})();
