/* Live feedback on a new password: strength meter and the rules, as the user types.
 * It mirrors sspm/passwords.py rule for rule, so the page never says "met" where the
 * server will refuse: the same zxcvbn (the original JavaScript here, its Rust port
 * there), the same names given to it (data-names, the server's user_inputs list,
 * rendered only once the account is proven), the same folding of those names
 * (fold() below is passwords.fold), and lengths counted in code points as Python does.
 * Everything it says comes from data- attributes the server translated. */
(function () {
  "use strict";
  var meter = document.getElementById("strength");
  var input = document.getElementById("new");
  if (!meter || !input) { return; }
  if (typeof window.zxcvbn === "function") { start(); return; }
  // Where a new password is one choice among others (the home page), not every
  // visitor downloads zxcvbn (800 kB): it comes when the box is first used.
  var source = meter.getAttribute("data-zxcvbn");
  if (!source) { return; }
  input.addEventListener("focus", load);

  function load() {
    input.removeEventListener("focus", load);
    var script = document.createElement("script");
    script.src = source;
    script.onload = start;
    document.head.appendChild(script);
  }

  function start() {
    var confirmInput = document.getElementById("confirm");
    var current = document.getElementById("current");
    var username = document.getElementById("username");
    var minLength = parseInt(meter.getAttribute("data-min-length"), 10) || 8;
    var minScore = parseInt(meter.getAttribute("data-min-score"), 10) || 3;
    var labels = JSON.parse(meter.getAttribute("data-labels"));
    var prefix = meter.getAttribute("data-prefix");
    var said = {
      met: meter.getAttribute("data-met"),
      unmet: meter.getAttribute("data-unmet"),
      pending: meter.getAttribute("data-pending")
    };
    // Null where the page does not know the account yet (Change Password before the
    // old password is proven): an account's names are not told to whoever types its name.
    var known = meter.hasAttribute("data-names") ? JSON.parse(meter.getAttribute("data-names")) : null;
    var fill = meter.querySelector(".meter-fill");
    var text = document.getElementById("strength-text");
    // passwords._ESTIMATE_CHARS and passwords._MIN_NAME_PART.
    var ESTIMATE_CHARS = 64;
    var MIN_NAME_PART = 3;

    function chars(s) { return Array.from(s); }

    // What zxcvbn is given. It counts UTF-16 units where the server's counts characters,
    // so a character outside the BMP (an emoji) would count twice here: each is given as
    // one private-use character instead, keeping equal ones equal and near ones near.
    function estimated(value) {
      return chars(value).slice(0, ESTIMATE_CHARS).map(function (c) {
        var point = c.codePointAt(0);
        return point > 0xFFFF ? String.fromCharCode(0xE000 + (point & 0xFFF)) : c;
      }).join("");
    }

    function fold(s) { return s.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase(); }

    // The names to check and to give zxcvbn: the server's list, plus the user name
    // being typed on the pages that ask for one.
    function names() {
      var list = known ? known.slice() : [];
      var typed = username ? username.value.trim() : "";
      if (chars(typed).length >= MIN_NAME_PART && list.indexOf(typed) === -1) { list.push(typed); }
      return list;
    }

    function mark(rule, state) {
      var item = document.querySelector('[data-rule="' + rule + '"]');
      if (!item) { return; }
      item.classList.toggle("rule-met", state === "met");
      item.setAttribute("data-state", state);
      var hidden = item.querySelector(".visually-hidden");
      if (!hidden) {
        hidden = document.createElement("span");
        hidden.className = "visually-hidden";
        item.appendChild(hidden);
      }
      hidden.textContent = " (" + said[state] + ")";
    }

    function verdict(ok) { return ok ? "met" : "unmet"; }

    function update() {
      var value = input.value;
      var hints = names();
      var score = value ? window.zxcvbn(estimated(value), hints).score : 0;
      var folded = fold(value);
      var hasName = hints.some(function (n) { return folded.indexOf(fold(n)) !== -1; });
      fill.setAttribute("data-score", value ? String(score) : "none");
      // The bar and its words change together: never a green bar over "Very weak".
      // Written only when it changes, so the live region speaks once per level.
      var label = value ? prefix + " " + labels[score] : "";
      if (text.textContent !== label) { text.textContent = label; }
      mark("length", verdict(chars(value).length >= minLength));
      mark("strength", verdict(value.length > 0 && score >= minScore));
      // A tick only where every name is known; before that, a name found is still a
      // miss, and the rest is checked when the form is sent.
      if (known !== null) { mark("name", verdict(value.length > 0 && !hasName)); }
      else { mark("name", hasName ? "unmet" : "pending"); }
      mark("different", verdict(value.length > 0 && (!current || value !== current.value)));
      if (confirmInput) { mark("match", verdict(value.length > 0 && value === confirmInput.value)); }
    }

    meter.hidden = false;
    input.addEventListener("input", update);
    if (username) { username.addEventListener("input", update); }
    if (confirmInput) { confirmInput.addEventListener("input", update); }
    if (current) { current.addEventListener("input", update); }
    // A value typed while zxcvbn loaded, or restored by the browser, is judged at once.
    if (input.value) { update(); }
  }
})();
