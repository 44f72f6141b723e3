/* One sensor's chart (ECharts): readings from /api/v1/sensing/sensors/{code}/readings, raw, hourly or daily, over a
 * chosen range, with the thresholds of the sensor's rule drawn as lines (markLine). Rain is compared as the
 * sliding 1-hour sum (raw) or the hourly total; displacement as the movement over 24 hours. No inline script:
 * the configuration comes from the json_script block "sensor-config". */
(function () {
  "use strict";
  var node = document.getElementById("sensor-chart");
  var cfgNode = document.getElementById("sensor-config");
  if (!node || !cfgNode || !window.echarts) {
    return;
  }
  var cfg = JSON.parse(cfgNode.textContent);
  var T = cfg.labels || {};
  var HOUR = 3600 * 1000;
  // The time axis and tooltip always read in Beijing time, whatever the browser's own time zone (a laptop on
  // UTC, a big screen set up abroad): times are moved by +8 h and drawn as UTC. China keeps no daylight time.
  var BEIJING = 8 * HOUR;
  function beijing(t) { return (typeof t === "number" ? t : (t instanceof Date ? t.getTime() : Date.parse(t))) + BEIJING; }
  var RAW_MAX_HOURS = 31 * 24;  // queries.MAX_RAW_SPAN
  var COLORS = {blue: "#1e6fd9", yellow: "#e6b800", orange: "#ff8f00", red: "#d32f2f"};
  var statusNode = document.getElementById("chart-status");
  var chart = echarts.init(node, null, {renderer: "canvas"});
  var state = {hours: 24, res: "raw"};
  var seq = 0;

  function status(text) {
    if (statusNode) {
      statusNode.textContent = text || "";
    }
  }

  function textNode(tag, text, className) {
    var n = document.createElement(tag);
    if (className) {
      n.className = className;
    }
    n.textContent = text === undefined || text === null ? "" : String(text);
    return n;
  }

  // ECharts renders its tooltip as HTML and the series names carry the sensor's unit (data): hand it nodes
  // whose text is set instead of a string.
  function tooltip(params) {
    var list = Array.isArray(params) ? params : [params];
    var box = textNode("div", list.length ? list[0].axisValueLabel : "");
    list.forEach(function (p) {
      var line = document.createElement("div");
      var dot = textNode("i", "", "dot");
      dot.style.background = /^#[0-9a-fA-F]{3,8}$/.test(p.color || "") ? p.color : "#888";
      line.appendChild(dot);
      line.appendChild(textNode("span", p.seriesName));
      var v = Array.isArray(p.value) ? p.value[1] : p.value;
      line.appendChild(textNode("b", " " + (v === null || v === undefined ? "—" : v)));
      box.appendChild(line);
    });
    return box;
  }

  function markLine() {
    var t = cfg.thresholds;
    if (!t || !t.levels || !t.levels.length) {
      return undefined;
    }
    return {
      symbol: "none", silent: true,
      data: t.levels.map(function (lv) {
        return {yAxis: lv.value, name: lv.label, lineStyle: {color: COLORS[lv.level] || "#888", type: "dashed", width: 1.5},
          label: {formatter: function () {
            return String(lv.label) + " " + lv.value;  // a function: no {a}/{b} templates read in the text
          }, position: "insideEndTop", color: COLORS[lv.level] || "#888"}};
      }),
    };
  }

  function maxThreshold() {
    var t = cfg.thresholds;
    var m = 0;
    if (t && t.levels) {
      t.levels.forEach(function (lv) {
        m = Math.max(m, lv.value);
      });
    }
    return m;
  }

  function niceMax(v) {
    var top = Math.max(v.max, maxThreshold());
    var span = Math.max(top - v.min, 1e-6);
    var step = Math.pow(10, Math.floor(Math.log(span / 4) / Math.LN10));
    return Math.ceil((top + span * 0.04) / step) * step;
  }

  // [[time, value], …] sorted by time → the sum over the hour ending at each point.
  function slidingHour(points) {
    var out = [];
    var sum = 0;
    var j = 0;
    for (var i = 0; i < points.length; i++) {
      var t = Date.parse(points[i][0]);
      sum += points[i][1];
      while (Date.parse(points[j][0]) <= t - HOUR) {
        sum -= points[j][1];
        j++;
      }
      out.push([points[i][0], Math.round(sum * 10) / 10]);
    }
    return out;
  }

  // The change since the value 24 h earlier (the newest at or before, at most 2 h older), as the rule computes it.
  function change24h(points) {
    var out = [];
    var j = 0;
    for (var i = 0; i < points.length; i++) {
      var t = Date.parse(points[i][0]);
      while (j + 1 < points.length && Date.parse(points[j + 1][0]) <= t - 24 * HOUR) {
        j++;
      }
      var tj = Date.parse(points[j][0]);
      if (tj <= t - 24 * HOUR && tj >= t - 26 * HOUR) {
        out.push([points[i][0], Math.round((points[i][1] - points[j][1]) * 100) / 100]);
      }
    }
    return out;
  }

  function series(points) {
    var type = cfg.sensorType;
    var ml = markLine();
    var unit = cfg.unit || "";
    var s = [];
    var axes = [{type: "value", name: unit, scale: type !== "rainfall", splitLine: {lineStyle: {color: "#e6ebf0"}}}];
    if (state.res === "raw") {
      if (type === "rainfall") {
        s.push({name: T.value + " (" + unit + ")", type: "bar", data: points, itemStyle: {color: "#7fb3e6"}, barMaxWidth: 6});
        s.push({name: T.rain_1h, type: "line", data: slidingHour(points), showSymbol: false, lineStyle: {width: 2},
          itemStyle: {color: "#0d3b66"}, markLine: ml});
      } else if (type === "displacement") {
        axes.push({type: "value", name: T.disp_24h, position: "right", splitLine: {show: false}});
        s.push({name: T.value, type: "line", data: points, showSymbol: false, itemStyle: {color: "#0d3b66"}});
        s.push({name: T.disp_24h, type: "line", yAxisIndex: 1, data: change24h(points), showSymbol: false,
          itemStyle: {color: "#8e24aa"}, markLine: ml});
      } else {
        s.push({name: T.value, type: "line", data: points, showSymbol: points.length < 60, itemStyle: {color: "#0d3b66"},
          markLine: ml});
      }
    } else {
      // hourly and daily rows: [hour end or day start, count, sum, min, max, avg]; an hour is (end − 1 h, end]
      var daily = state.res === "daily";
      if (daily && type === "rainfall") {
        ml = null;  // the thresholds are 1–24 h windows: a line across daily totals would mislead
      }
      var L = {total: daily ? T.daily_total : T.hourly_total, max: daily ? T.daily_max : T.hourly_max,
        avg: daily ? T.daily_avg : T.hourly_avg};
      if (type === "rainfall") {
        s.push({name: L.total, type: "bar", data: points.map(function (r) { return [r[0], Math.round(r[2] * 10) / 10]; }),
          itemStyle: {color: "#4a8fd6"}, barMaxWidth: 14, markLine: ml});
      } else if (type === "displacement") {
        var avg = points.map(function (r) { return [r[0], r[5]]; });
        axes.push({type: "value", name: T.disp_24h, position: "right", splitLine: {show: false}});
        s.push({name: L.avg, type: "line", data: avg, showSymbol: false, itemStyle: {color: "#0d3b66"}});
        s.push({name: T.disp_24h, type: "line", yAxisIndex: 1, data: change24h(avg), showSymbol: false,
          itemStyle: {color: "#8e24aa"}, markLine: ml});
      } else {
        s.push({name: L.max, type: "line", data: points.map(function (r) { return [r[0], r[4]]; }), showSymbol: false,
          itemStyle: {color: "#0d3b66"}, markLine: ml});
        s.push({name: L.avg, type: "line", data: points.map(function (r) { return [r[0], r[5]]; }), showSymbol: false,
          itemStyle: {color: "#7fb3e6"}, lineStyle: {type: "dotted"}});
      }
    }
    // Keep the threshold lines in view on the axis that carries them, with a round upper bound.
    if (ml) {
      axes[type === "displacement" ? 1 : 0].max = niceMax;
    }
    return {series: s, yAxis: axes};
  }

  function draw(points, start, end) {
    if (!points.length) {
      chart.clear();
      chart.setOption({title: {text: T.no_data, left: "center", top: "middle",
        textStyle: {color: "#8a99a8", fontSize: 14, fontWeight: "normal"}}});
      return;
    }
    var parts = series(points);
    parts.series.forEach(function (one) {
      one.data = one.data.map(function (d) { return [beijing(d[0]), d[1]]; });
    });
    chart.setOption({
      useUTC: true,
      animation: false,
      grid: {left: 56, right: cfg.sensorType === "displacement" ? 64 : 24, top: 40, bottom: 64},
      legend: {top: 4},
      tooltip: {trigger: "axis", formatter: tooltip},
      xAxis: {type: "time", min: beijing(start), max: beijing(end), axisLabel: {hideOverlap: true}},
      yAxis: parts.yAxis,
      dataZoom: [{type: "inside"}, {type: "slider", height: 20, bottom: 12}],
      series: parts.series,
    }, true);
  }

  function setRes(res) {
    state.res = res;
    document.querySelectorAll(".chart-bar button[data-res]").forEach(function (b) {
      b.classList.toggle("on", b.getAttribute("data-res") === res);
    });
  }

  function load() {
    var mySeq = ++seq;
    var end = new Date();
    var start = new Date(end.getTime() - state.hours * HOUR);
    // Derived series look back: the sliding hour of rain, the 24-hour movement of a slope.
    var lead = cfg.sensorType === "displacement" ? 26 : cfg.sensorType === "rainfall" ? 1 : 0;
    if (state.res === "raw" && state.hours + lead > RAW_MAX_HOURS) {
      setRes("hourly");  // the API serves raw readings for at most 31 days
    }
    var from = new Date(start.getTime() - lead * HOUR);
    var params = new URLSearchParams({resolution: state.res, start: from.toISOString(), end: end.toISOString()});
    status(T.loading);
    chart.showLoading({text: ""});
    fetch(cfg.readingsUrl + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        if (!r.ok) {
          throw new Error(String(r.status));
        }
        return r.json();
      })
      .then(function (data) {
        if (mySeq !== seq) {
          return;
        }
        chart.hideLoading();
        draw(data.points || [], start, end);
        status("");
        node.setAttribute("data-points", String((data.points || []).length));
        document.body.setAttribute("data-chart-ready", "1");
      })
      .catch(function () {
        if (mySeq === seq) {
          chart.hideLoading();
          status(T.load_failed);
        }
      });
  }

  document.querySelectorAll(".chart-bar button").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var group = btn.parentNode;
      group.querySelectorAll("button").forEach(function (b) {
        b.classList.toggle("on", b === btn);
      });
      if (btn.hasAttribute("data-hours")) {
        state.hours = Number(btn.getAttribute("data-hours"));
        // Keep the number of points drawable: daily beyond 90 days (load() also keeps raw within a month).
        if (state.hours > 24 * 90) {
          setRes("daily");
        }
      } else {
        state.res = btn.getAttribute("data-res");
      }
      load();
    });
  });
  window.addEventListener("resize", function () {
    chart.resize();
  });
  load();
})();
