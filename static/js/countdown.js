/* The challenge countdown. The server enforces the deadline; this only shows it.
 * Screen readers hear it at a few moments (each minute, 30 s, 10 s, the end), not every second. */
(function () {
  "use strict";
  var box = document.getElementById("countdown");
  if (!box) { return; }
  var clock = box.querySelector(".countdown-clock");
  var staticText = box.querySelector(".countdown-static");
  var live = document.getElementById("countdown-announce");
  var end = Date.now() + parseInt(box.getAttribute("data-remaining"), 10) * 1000;
  var announceTemplate = box.getAttribute("data-announce");
  var expiredText = box.getAttribute("data-expired");
  var announced = {};

  function format(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function tick() {
    var left = Math.max(0, Math.round((end - Date.now()) / 1000));
    clock.textContent = format(left);
    if (staticText) { staticText.textContent = format(left); }
    var moment = left === 0 ? "end" : (left % 60 === 0 || left === 30 || left === 10) ? String(left) : null;
    if (moment && !announced[moment]) {
      announced[moment] = true;
      live.textContent = left === 0 ? expiredText : announceTemplate.replace("{time}", format(left));
    }
    if (left === 0) {
      box.classList.add("countdown-over");
      live.classList.remove("visually-hidden"); // what to do next, for sighted users too
      closeForm();
      return;
    }
    window.setTimeout(tick, 1000 - ((end - Date.now()) % 1000 + 1000) % 1000 || 1000);
  }
  /* Nothing sent from now on can succeed: stop the form (every submit button, so Enter does nothing
   * either), show the real "Start again" link in its place and, if the user was in the form, take
   * the keyboard there. The server refuses late answers anyway and offers the same link. */
  function closeForm() {
    var restart = document.getElementById("restart");
    var form = restart ? restart.closest("form") : null;
    if (!form) { return; }
    var wasInForm = form.contains(document.activeElement) || document.activeElement === document.body;
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
      button.disabled = true;
      if (button.value === "continue" && !button.classList.contains("visually-hidden")) { button.hidden = true; }
    });
    Array.prototype.forEach.call(form.querySelectorAll("input:not([type=hidden])"), function (input) {
      input.readOnly = true;
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    restart.hidden = false;
    if (wasInForm) { restart.focus(); }
  }

  clock.removeAttribute("aria-hidden");
  if (staticText) { staticText.remove(); staticText = null; }
  tick();
})();
