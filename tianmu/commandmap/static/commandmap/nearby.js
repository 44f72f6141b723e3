/* 周边资源 (nearby resources): for every [data-nearby] panel on the page, reads its JSON config (the point, the
 * radius choices, the layers, the API and page URLs, its texts), asks GET /api/v1/map/nearby and lists, per
 * layer, the nearest records with their distance, type, contact, phone and figures (a team's headcount, a
 * shelter's free places). Changing the radius asks again. Text from data is only ever set as textContent.
 * Exposes window.tianmuNearby = {mount, load} for the command map, which shows the same panel for a clicked point
 * and draws the results (options.onShow). */
(function () {
  "use strict";

  if (window.tianmuNearby) {
    window.tianmuNearby.mountAll();
    return;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "className") {
        node.className = attrs[k];
      } else {
        node.setAttribute(k, attrs[k]);
      }
    });
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function safeColor(c) {
    return /^#[0-9a-fA-F]{3,8}$/.test(c || "") ? c : "#607080";
  }

  function fmt(n) {
    return Number(n || 0).toLocaleString("zh-CN", {maximumFractionDigits: 1});
  }

  function distance(m, L) {
    if (m < 1000) {
      return Math.round(m) + " " + (L.m || "m");
    }
    return (m / 1000).toFixed(m < 10000 ? 1 : 0) + " " + (L.km || "km");
  }

  function pageUrl(template, slug, id) {
    return template.replace("{slug}", encodeURIComponent(slug)).replace("{id}", encodeURIComponent(id));
  }

  function fill(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (_m, key) {
      return values[key] !== undefined ? String(values[key]) : "";
    });
  }

  function itemNode(cfg, kind, item, options) {
    var L = cfg.labels || {};
    var li = el("li", {className: "nearby-item", "data-kind": kind.slug, "data-id": item.id});
    var top = el("div", {className: "nearby-top"});
    top.appendChild(el("a", {href: pageUrl(cfg.recordUrl, kind.slug, item.id), className: "nearby-name"}, item.name));
    top.appendChild(el("span", {className: "nearby-dist", "data-distance": item.distance_m},
      distance(item.distance_m, L)));
    li.appendChild(top);
    var facts = [item.type_label, item.region_name].filter(Boolean);
    if (item.state_label) {
      var state = el("span", {className: "tag state-" + String(item.state || "").replace(/[^a-z_]/g, "")},
        item.state_label);
      var line0 = el("div", {className: "nearby-facts"});
      line0.appendChild(state);
      line0.appendChild(document.createTextNode(" " + facts.join(" · ")));
      li.appendChild(line0);
    } else if (facts.length) {
      li.appendChild(el("div", {className: "nearby-facts"}, facts.join(" · ")));
    }
    var figures = Object.keys(item.figures || {}).filter(function (f) {
      return item.figures[f] !== null && item.figures[f] !== undefined;
    }).map(function (f) {
      return ((kind.figure_labels && kind.figure_labels[f]) || f) + " " + fmt(item.figures[f]);
    });
    var contact = el("div", {className: "nearby-contact"});
    if (item.contact) {
      contact.appendChild(el("span", null, (L.contact || "") + " " + item.contact));
    }
    if (item.phone) {
      contact.appendChild(el("a", {href: "tel:" + item.phone.replace(/[^0-9+]/g, ""), className: "nearby-phone"},
        item.phone));
    }
    figures.forEach(function (text) {
      contact.appendChild(el("span", {className: "nearby-figure"}, text));
    });
    var show = el("a", {href: cfg.mapUrl + "?show=" + encodeURIComponent(kind.slug + ":" + item.id),
      className: "nearby-show"}, L.on_map || "");
    if (options.onShow) {
      show.addEventListener("click", function (e) {
        e.preventDefault();
        options.onShow(kind, item);
      });
    }
    contact.appendChild(show);
    li.appendChild(contact);
    return li;
  }

  function render(body, cfg, data, options) {
    var L = cfg.labels || {};
    body.textContent = "";
    var excluded = (cfg.exclude || "").split(":");
    (data.kinds || []).forEach(function (kind) {
      var items = (kind.items || []).filter(function (item) {
        return !(excluded[0] === kind.slug && String(item.id) === excluded[1]);
      });
      var count = kind.count - ((kind.items || []).length - items.length);
      var group = el("div", {className: "nearby-group" + (items.length ? "" : " empty"), "data-nearby-kind": kind.slug});
      var head = el("h3");
      var dot = el("i", {className: "dot"});
      dot.style.background = safeColor(kind.color);
      head.appendChild(dot);
      head.appendChild(el("span", null, kind.name));
      head.appendChild(el("span", {className: "nearby-count", "data-count": count}, fmt(count)));
      if (count) {
        var q = new URLSearchParams({lon: cfg.lon, lat: cfg.lat, radius: data.radius});
        head.appendChild(el("a", {href: pageUrl(cfg.listUrl, kind.slug, "") + "?" + q.toString(),
          className: "nearby-list", title: L.list_near_title || ""}, L.list_near || ""));
      }
      group.appendChild(head);
      if (!items.length) {
        group.appendChild(el("p", {className: "muted small"}, L.none));
      } else {
        var ul = el("ul", {className: "nearby-items"});
        items.forEach(function (item) {
          ul.appendChild(itemNode(cfg, kind, item, options));
        });
        group.appendChild(ul);
        if (count > items.length) {
          group.appendChild(el("p", {className: "muted small"}, fill(L.more, {n: count, shown: items.length})));
        }
      }
      body.appendChild(group);
    });
  }

  // Fetch and draw the panel for cfg's point; resolves with the API's answer (the map draws it too).
  function load(root, cfg, options) {
    options = options || {};
    var body = root.querySelector("[data-nearby-body]");
    var select = root.querySelector("[data-nearby-radius]");
    var L = cfg.labels || {};
    var radius = select ? select.value : cfg.radius;
    var seq = (root.tmSeq || 0) + 1;
    root.tmSeq = seq;
    root.removeAttribute("data-nearby-ready");
    body.textContent = "";
    body.appendChild(el("p", {className: "muted"}, L.loading));
    var params = new URLSearchParams({lon: cfg.lon, lat: cfg.lat, radius: radius, limit: options.limit || 5});
    if (cfg.kinds && cfg.kinds.length) {
      params.set("kinds", cfg.kinds.join(","));
    }
    return fetch(cfg.api + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        if (!r.ok) {
          throw new Error(String(r.status));
        }
        return r.json();
      }).then(function (data) {
        if (root.tmSeq !== seq) {
          return data;
        }
        render(body, cfg, data, options);
        root.setAttribute("data-nearby-ready", "1");
        if (options.onData) {
          options.onData(data);
        }
        return data;
      }).catch(function () {
        if (root.tmSeq === seq) {
          body.textContent = "";
          body.appendChild(el("p", {className: "error"}, L.load_failed));
        }
      });
  }

  function mount(root, cfg, options) {
    var select = root.querySelector("[data-nearby-radius]");
    if (select && !select.tmBound) {
      select.tmBound = true;
      select.addEventListener("change", function () {
        load(root, root.tmCfg, root.tmOptions);
      });
    }
    root.tmCfg = cfg;
    root.tmOptions = options || {};
    return load(root, cfg, options);
  }

  function mountAll() {
    document.querySelectorAll("[data-nearby]").forEach(function (root) {
      if (root.tmMounted) {
        return;
      }
      var node = root.querySelector("script[type='application/json']");
      if (!node) {
        return;
      }
      root.tmMounted = true;
      mount(root, JSON.parse(node.textContent));
    });
  }

  window.tianmuNearby = {mount: mount, load: load, mountAll: mountAll, distance: distance};
  mountAll();
})();
