// Keep the session alive while touched, warn before the idle timeout,
// show live camera feedback, and ask the kiosk to read the screen aloud.
(function () {
  "use strict";
  var body = document.body;
  var step = body.dataset.step;
  var lastPing = 0;
  var dialog = document.getElementById("idle-dialog");
  var dialogBody = document.getElementById("idle-body");
  var returnFocus = null;

  function post(url) {
    return fetch(url, { method: "POST", headers: { "x-kiosk": "1" } });
  }

  function touched() {
    var now = Date.now();
    if (now - lastPing > 3000) { lastPing = now; post("/api/touch"); }
  }
  ["pointerdown", "keydown"].forEach(function (name) {
    document.addEventListener(name, touched, { passive: true });
  });

  function showDialog(seconds) {
    dialogBody.textContent = dialogBody.dataset.template.replace("{s}", seconds);
    if (dialog.hidden) {
      returnFocus = document.activeElement;
      dialog.hidden = false;
      document.getElementById("idle-continue").focus();
      post("/api/speak?idle=1");
    }
  }
  function hideDialog() {
    if (!dialog.hidden) {
      dialog.hidden = true;
      if (returnFocus) { returnFocus.focus(); }
    }
  }
  document.getElementById("idle-continue").addEventListener("click", function () {
    lastPing = 0; touched(); hideDialog();
  });

  function poll() {
    fetch("/api/state").then(function (r) { return r.json(); }).then(function (s) {
      var changed = s.asleep !== (body.dataset.asleep === "on") ||
        s.speech !== (body.dataset.speech === "on") ||
        s.large_text !== (body.dataset.largeText === "on");
      if (s.step !== step || s.expired || changed) {
        window.location.replace("/"); return;
      }
      if (s.warning) { showDialog(s.seconds_left); } else { hideDialog(); }
    }).catch(function () {});
  }
  setInterval(poll, 1000);

  var feedback = document.getElementById("feedback");
  var goodInRow = 0;
  var take = document.getElementById("take");
  if (feedback) {
    setInterval(function () {
      fetch("/api/feedback").then(function (r) { return r.json(); }).then(function (f) {
        if (feedback.textContent !== f.message) { feedback.textContent = f.message; }
        goodInRow = f.codes.length === 0 && f.message ? goodInRow + 1 : 0;
        if (goodInRow >= 3 && take && body.dataset.autoCapture === "on") {
          goodInRow = 0;
          take.click();
        }
      }).catch(function () {});
    }, 1500);
  }

  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  if (body.dataset.speech === "on") {
    post("/api/speak");
    var repeat = document.getElementById("repeat");
    if (repeat) { repeat.addEventListener("click", function () { post("/api/speak"); }); }
  }
})();
