/* Live alarm list: listens to the event stream (/events/stream) and, when an alarm event arrives, reloads the
 * table from the server (same filters, same page) without reloading the page. While someone is typing a note
 * or has an action menu open, the update waits behind a "refresh" notice instead of wiping their input.
 *
 * 确认全部 on the per-station view posts its form to the API instead (JSON, the form's CSRF token), so the page
 * stays where the officer is working: on success the table reloads at once; when the station's open alarms
 * changed since the row was drawn (the API refuses with 422 on `seen`), the table reloads and the form opens
 * again over the fresh list, with the officer's note and the reason. Without JavaScript the form posts to the
 * page view, which redirects back. */
(function () {
  "use strict";
  var box = document.getElementById("alarm-live");
  if (!box) {
    return;
  }
  var statusNode = document.getElementById("live-status");
  var pending = document.getElementById("alarm-pending");
  var reloadBtn = document.getElementById("alarm-reload");
  var doneNode = document.getElementById("alarm-done");
  var THROTTLE_MS = 1500;
  var timer = null;
  var loading = false;
  var again = false;
  var againForced = false;
  var afterLoad = [];

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

  // force: reload even while someone is busy in the table; after: called once the new table is in place.
  function refresh(force, after) {
    timer = null;
    if (after) {
      afterLoad.push(after);
    }
    if (loading) {
      again = true;
      againForced = againForced || Boolean(force);
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
        // The fragment is this server's own template (Django escapes every value in it), not data.
        box.innerHTML = html;
        box.querySelectorAll("tr[data-id]").forEach(function (tr) {
          if (before[tr.getAttribute("data-id")] !== tr.getAttribute("data-key")) {
            tr.classList.add("flash");
          }
        });
        pending.hidden = true;
        var callbacks = afterLoad;
        afterLoad = [];
        callbacks.forEach(function (fn) {
          fn();
        });
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
          if (againForced) {
            againForced = false;
            refresh(true);
          } else {
            schedule();
          }
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

  // ---- 确认全部 (per-station view) ----

  var english = (document.documentElement.getAttribute("lang") || "").indexOf("en") === 0;

  function errorText(status, body) {
    if (body && body.errors) {
      return body.errors.map(function (e) {
        return english ? e.message_en : e.message;
      }).join(" ");
    }
    if (body && body.message) {
      return english ? body.message_en : body.message;
    }
    return "HTTP " + status;
  }

  function seenList(text) {
    return text.split(/\s+/).filter(Boolean).map(function (token) {
      var parts = token.split(":");
      return {id: Number(parts[0]), level: parts[1] || ""};
    });
  }

  function stationForm(place) {
    var forms = box.querySelectorAll("form[data-ack-api]");
    for (var i = 0; i < forms.length; i++) {
      if (forms[i].getAttribute("data-place") === place) {
        return forms[i];
      }
    }
    return null;
  }

  function showError(form, message) {
    var node = form.querySelector(".errorlist");
    node.textContent = message;
    node.hidden = false;
  }

  function showDone(form, count) {
    if (!doneNode) {
      return;
    }
    doneNode.textContent = doneNode.getAttribute("data-label").replace("{name}", form.getAttribute("data-name"))
      .replace("{n}", String(count));
    doneNode.hidden = false;
  }

  box.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches("form[data-ack-api]") || !window.fetch) {
      return;
    }
    ev.preventDefault();
    var button = form.querySelector("button");
    var note = form.querySelector("input[name=note]");
    var place = form.getAttribute("data-place");
    button.disabled = true;
    if (doneNode) {
      doneNode.hidden = true;
    }
    fetch(form.getAttribute("data-ack-api"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", Accept: "application/json",
                "X-CSRFToken": form.querySelector("input[name=csrfmiddlewaretoken]").value},
      body: JSON.stringify({note: note.value, seen: seenList(form.querySelector("input[name=seen]").value)})
    }).then(function (r) {
      return r.json().catch(function () {
        return null;
      }).then(function (body) {
        return {status: r.status, ok: r.ok, body: body};
      });
    }).then(function (res) {
      if (res.ok) {
        note.value = "";
        form.closest("details").open = false;
        showDone(form, res.body.acknowledged);
        refresh(true);
        return;
      }
      var message = errorText(res.status, res.body);
      var stale = res.status === 422 && res.body && (res.body.errors || []).some(function (e) {
        return e.field === "seen";
      });
      if (!stale) {
        button.disabled = false;
        showError(form, message);
        return;
      }
      // The station changed under the officer's eyes: show what it is now, and ask again.
      var typed = note.value;
      refresh(true, function () {
        var fresh = stationForm(place);
        if (fresh) {
          fresh.closest("details").open = true;
          fresh.querySelector("input[name=note]").value = typed;
          showError(fresh, message);
        } else if (doneNode) {
          doneNode.textContent = message;
          doneNode.hidden = false;
        }
      });
    }).catch(function () {
      button.disabled = false;
      showError(form, doneNode ? doneNode.getAttribute("data-failed") : "");
    });
  });
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
    if (event && typeof event.type === "string" && event.type.indexOf("sensing.alarm.") === 0) {
      schedule();
    }
  };
})();
