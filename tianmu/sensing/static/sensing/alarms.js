/* Live alarm list: listens to the event stream (/events/stream) and, when an alarm event arrives, reloads the
 * table from the server (same filters, same page) without reloading the page. While someone is typing a note
 * or has an action menu open, the update waits behind a "refresh" notice instead of wiping their input. */
(function () {
  "use strict";
  var box = document.getElementById("alarm-live");
  if (!box) {
    return;
  }
  var statusNode = document.getElementById("live-status");
  var pending = document.getElementById("alarm-pending");
  var reloadBtn = document.getElementById("alarm-reload");
  var THROTTLE_MS = 1500;
  var timer = null;
  var loading = false;
  var again = false;

  function setState(state) {
    if (statusNode) {
      statusNode.setAttribute("data-state", state);
      statusNode.textContent = statusNode.getAttribute("data-label-" + state) || state;
    }
  }

  function busy() {
    var active = document.activeElement;
    if (active && active !== document.body && box.contains(active) && active.tagName !== "A") {
      return true;
    }
    if (box.querySelector("details[open]")) {
      return true;
    }
    var notes = box.querySelectorAll("input[name=note]");
    for (var i = 0; i < notes.length; i++) {
      if (notes[i].value) {
        return true;
      }
    }
    return false;
  }

  function rowKeys() {
    var keys = {};
    box.querySelectorAll("tr[data-id]").forEach(function (tr) {
      keys[tr.getAttribute("data-id")] = tr.getAttribute("data-key");
    });
    return keys;
  }

  function refresh(force) {
    timer = null;
    if (loading) {
      again = true;
      return;
    }
    if (!force && busy()) {
      pending.hidden = false;
      return;
    }
    loading = true;
    var before = rowKeys();
    fetch(box.getAttribute("data-fragment"), {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) {
        if (!r.ok) {
          throw new Error(String(r.status));
        }
        return r.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        box.querySelectorAll("tr[data-id]").forEach(function (tr) {
          if (before[tr.getAttribute("data-id")] !== tr.getAttribute("data-key")) {
            tr.classList.add("flash");
          }
        });
        pending.hidden = true;
        document.body.setAttribute("data-alarms-refreshed", String(Number(document.body.getAttribute(
          "data-alarms-refreshed") || 0) + 1));
      })
      .catch(function () {
        setState("error");
      })
      .then(function () {
        loading = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  function schedule() {
    if (!timer) {
      timer = setTimeout(function () {
        refresh(false);
      }, THROTTLE_MS);
    }
  }

  if (reloadBtn) {
    reloadBtn.addEventListener("click", function () {
      refresh(true);
    });
  }
  // When the person leaves an input or closes a menu, apply what waited.
  box.addEventListener("focusout", function () {
    if (!pending.hidden) {
      setTimeout(function () {
        if (!busy()) {
          refresh(false);
        }
      }, 300);
    }
  });
  box.addEventListener("toggle", function () {
    if (!pending.hidden && !busy()) {
      refresh(false);
    }
  }, true);

  if (!window.EventSource) {
    return;
  }
  var source = new EventSource(box.getAttribute("data-stream"));
  source.onopen = function () {
    setState("live");
    document.body.setAttribute("data-alarms-live", "1");
  };
  source.onerror = function () {
    setState("error");
  };
  source.onmessage = function (msg) {
    var event;
    try {
      event = JSON.parse(msg.data);
    } catch (e) {
      return;
    }
    if (event && typeof event.type === "string" && event.type.indexOf("sensing.alarm_") === 0) {
      schedule();
    }
  };
})();
