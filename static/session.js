// The session expiry warning. Two minutes before the session would end (idle timeout or its
// absolute lifetime), a banner offers 延長 (a request renews the idle timer). On the review
// screen the form's input is also kept in this tab's sessionStorage when the warning shows and
// put back when the page is opened again, so a reviewer who was away does not lose the work.
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  if (!box) return;
  var form = document.getElementById("review-form");
  var storeKey = "hozon-draft:" + location.pathname;
  var timer = null;

  function save() {
    if (!form) return;
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "hidden" || el.type === "submit") return;
      values[el.name] = el.type === "checkbox" ? (el.checked ? "on" : "") : el.value;
    });
    try { sessionStorage.setItem(storeKey, JSON.stringify(values)); } catch (e) { /* storage full or off */ }
  }

  function restore() {
    if (!form) return;
    var raw = null;
    try { raw = sessionStorage.getItem(storeKey); } catch (e) { return; }
    if (!raw) return;
    var values = JSON.parse(raw);
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!(el.name in values)) return;
      if (el.type === "checkbox") el.checked = values[el.name] === "on"; else el.value = values[el.name];
    });
    sessionStorage.removeItem(storeKey);
  }

  function schedule(left) {
    clearTimeout(timer);
    box.hidden = true;
    timer = setTimeout(function () {
      save();
      box.hidden = false;
      timer = setTimeout(function () {
        document.getElementById("session-warning-text").textContent =
          "セッションが終了しました。入力内容はこのタブに保存してあります。再度ログインしてから、このページを開き直してください。";
        document.getElementById("session-extend").hidden = true;
      }, Math.min(left, 120) * 1000);
    }, Math.max(left - 120, 0) * 1000);
  }

  document.getElementById("session-extend").addEventListener("click", function () {
    fetch("/account/ping", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (j) { schedule(j.left_s); })
      .catch(function () { location.href = "/login"; });
  });
  if (form) {
    form.addEventListener("submit", function () { sessionStorage.removeItem(storeKey); });
    // While the warning is up, every keystroke is kept too.
    form.addEventListener("input", function () { if (!box.hidden) save(); });
  }
  restore();
  schedule(parseInt(box.dataset.left, 10) || 0);
})();
