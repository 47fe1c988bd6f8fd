/* Live feedback on a new password: strength meter and the rules, as the user types.
 * It mirrors sspm/passwords.py (same zxcvbn, same rules); the server decides on submit.
 * Everything it says comes from data- attributes the server translated. */
(function () {
  "use strict";
  var meter = document.getElementById("strength");
  var input = document.getElementById("new");
  if (!meter || !input || typeof window.zxcvbn !== "function") { return; }
  var confirmInput = document.getElementById("confirm");
  var current = document.getElementById("current");
  var username = document.getElementById("username");
  var minLength = parseInt(meter.getAttribute("data-min-length"), 10) || 8;
  var minScore = parseInt(meter.getAttribute("data-min-score"), 10) || 3;
  var labels = JSON.parse(meter.getAttribute("data-labels"));
  var prefix = meter.getAttribute("data-prefix");
  var met = meter.getAttribute("data-met");
  var unmet = meter.getAttribute("data-unmet");
  var fill = meter.querySelector(".meter-fill");
  var text = document.getElementById("strength-text");
  var timer = null;

  function names() {
    var parts = [];
    if (username && username.value.trim().length >= 3) { parts.push(username.value.trim()); }
    var known = meter.getAttribute("data-names");
    if (known) { JSON.parse(known).forEach(function (n) { if (n.length >= 3) { parts.push(n); } }); }
    return parts;
  }

  function mark(rule, ok) {
    var item = document.querySelector('[data-rule="' + rule + '"]');
    if (!item) { return; }
    item.classList.toggle("rule-met", ok);
    var state = item.querySelector(".visually-hidden");
    if (!state) {
      state = document.createElement("span");
      state.className = "visually-hidden";
      item.appendChild(state);
    }
    state.textContent = " (" + (ok ? met : unmet) + ")";
  }

  function update() {
    var value = input.value;
    var hints = names();
    var score = value ? window.zxcvbn(value.slice(0, 64), hints).score : 0;
    var folded = value.toLowerCase();
    var hasName = hints.some(function (n) { return folded.indexOf(n.toLowerCase()) !== -1; });
    fill.setAttribute("data-score", value ? String(score) : "none");
    mark("length", value.length >= minLength);
    mark("strength", value.length > 0 && score >= minScore);
    // Only where the page knows the names to look for: never a tick it cannot vouch for.
    if (username || meter.hasAttribute("data-names")) { mark("name", value.length > 0 && !hasName); }
    mark("different", value.length > 0 && (!current || value !== current.value));
    if (confirmInput) { mark("match", value.length > 0 && value === confirmInput.value); }
    // Announce the verdict once typing pauses, not on every key.
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      text.textContent = value ? prefix + " " + labels[score] : "";
    }, 600);
  }

  meter.hidden = false;
  input.addEventListener("input", update);
  if (username) { username.addEventListener("input", update); }
  if (confirmInput) { confirmInput.addEventListener("input", update); }
  if (current) { current.addEventListener("input", update); }
})();
