// Live attention on every page (core/attention.py): poll each declared source, show its "new since you last
// looked" counter in the top bar, and for each new alert at the levels asked for play a sound and raise a
// desktop notification (the browser's permission is asked by the 开启提醒 button, never on load). Without the
// permission the alert shows in the page. Several open tabs ring once: the first tab to see an alert claims it.
(function () {
  "use strict";
  const data = document.getElementById("tm-attention");
  const box = document.getElementById("attention");
  if (!data || !box) return;
  const sources = JSON.parse(data.textContent);
  const every = Math.max(5, Number(box.dataset.poll) || 15) * 1000;
  const state = {cursors: {}, counts: {}, played: 0, notified: [], shown: [], polls: 0};
  window.tianmuAttention = state;
  const toasts = document.getElementById("attention-toasts");
  const button = document.getElementById("attention-enable");
  const prefKey = (key) => "tianmu.attention." + key + ".optional";
  const store = {
    get: (k) => { try { return localStorage.getItem(k); } catch (e) { return null; } },
    set: (k, v) => { try { localStorage.setItem(k, v); } catch (e) { /* private mode: this page only */ } },
  };

  // The user's preference (e.g. orange too), kept in this browser.
  document.querySelectorAll("[data-attention-pref]").forEach((box) => {
    box.checked = store.get(prefKey(box.dataset.attentionPref)) === "1";
    box.addEventListener("change", () => store.set(prefKey(box.dataset.attentionPref), box.checked ? "1" : "0"));
  });
  const levels = (s) => s.levels.concat(store.get(prefKey(s.key)) === "1" ? s.optional : []);

  // Sound: a short two-tone chime through Web Audio, unlocked by the first click or key on the page.
  let audio = null;
  const unlock = () => {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { audio = null; }
  };
  document.addEventListener("pointerdown", unlock, {once: true});
  document.addEventListener("keydown", unlock, {once: true});
  function ring(level) {
    unlock();
    if (!audio) return;
    const t = audio.currentTime;
    const tones = level === "red" ? [880, 660, 880, 660] : [660, 520];
    tones.forEach((f, i) => {
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.0001, t + i * 0.28);
      gain.gain.exponentialRampToValueAtTime(0.3, t + i * 0.28 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.28 + 0.26);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + i * 0.28);
      osc.stop(t + i * 0.28 + 0.27);
    });
    state.played += 1;
  }

  function claim(alert) {  // one tab rings per alert
    const key = "tianmu.attention.rang." + alert.id + "." + alert.level;
    if (store.get(key)) return false;
    store.set(key, String(Date.now()));
    return true;
  }

  function toast(alert) {
    const div = document.createElement("div");
    div.className = "attn-toast level-" + alert.level;
    const a = document.createElement("a");
    a.href = alert.url;
    a.textContent = alert.title;
    const p = document.createElement("div");
    p.textContent = alert.body;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "attn-close";
    close.setAttribute("aria-label", "×");
    close.textContent = "×";
    close.addEventListener("click", () => div.remove());
    div.append(a, p, close);
    toasts.prepend(div);
    while (toasts.children.length > 4) toasts.lastChild.remove();
    state.shown.push(alert.id);
  }

  function alertUser(alert) {
    if (!claim(alert)) return false;
    if ("Notification" in window && Notification.permission === "granted") {
      const n = new Notification(alert.title, {body: alert.body, tag: "tianmu-" + alert.id + "-" + alert.level,
                                               requireInteraction: alert.level === "red"});
      n.onclick = () => { window.focus(); location.href = alert.url; };
      state.notified.push(alert.id);
    }
    toast(alert);
    return true;
  }

  function show(key, count) {
    state.counts[key] = count;
    const el = box.querySelector('[data-attention="' + key + '"]');
    if (!el) return;
    el.dataset.count = String(count);
    el.querySelector("b").textContent = count > 99 ? "99+" : String(count);
    el.classList.toggle("zero", count === 0);
  }

  async function check(s) {
    const q = new URLSearchParams({levels: levels(s).join(",")});
    if (state.cursors[s.key] !== undefined) q.set("after", state.cursors[s.key]);
    const r = await fetch(s.url + "?" + q, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!r.ok) return;
    const d = await r.json();
    const first = state.cursors[s.key] === undefined;
    state.cursors[s.key] = d.cursor;
    show(s.key, location.pathname === s.page ? 0 : d.count);
    if (first) return;
    const rung = d.alerts.filter(alertUser);  // one chime per poll, at the highest level among them
    if (rung.length) ring(rung.some((a) => a.level === "red") ? "red" : rung[0].level);
  }

  let busy = false;
  async function poll() {
    if (busy) return;
    busy = true;
    try { await Promise.all(sources.map(check)); state.polls += 1; } catch (e) { /* offline: next time */ }
    finally { busy = false; }
  }
  state.poll = poll;

  function showPermission() {
    if (!("Notification" in window)) { button.hidden = true; return; }
    const p = Notification.permission;
    button.classList.toggle("on", p === "granted");
    button.textContent = p === "granted" ? box.dataset.labelOn : p === "denied" ? box.dataset.labelDenied : button.textContent;
  }
  button.addEventListener("click", async () => {
    unlock();
    if ("Notification" in window && Notification.permission === "default") {
      try { await Notification.requestPermission(); } catch (e) { /* old browsers: callback form */ }
    }
    showPermission();
    ring("orange");
  });
  showPermission();

  poll();
  setInterval(() => { if (!document.hidden || "Notification" in window) poll(); }, every);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
})();
