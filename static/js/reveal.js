/* Show/Hide for masked answers (templates/_macros.html, field(..., masked=True)).
 * The box is type=password in the HTML, so without JavaScript it stays masked and
 * the button stays hidden. The button's own words say what pressing it does, and a
 * polite status says what just happened, for those who cannot see the box change. */
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button.reveal[aria-controls]");
  if (!buttons.length) { return; }
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("aria-live", "polite");
  document.body.appendChild(status);

  Array.prototype.forEach.call(buttons, function (button) {
    var input = document.getElementById(button.getAttribute("aria-controls"));
    if (!input) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.textContent = button.getAttribute(show ? "data-hide" : "data-show");
      status.textContent = button.getAttribute(show ? "data-shown" : "data-hidden");
    });
    // Masked again before sending, so no browser keeps the answer as plain typed text.
    if (input.form) {
      input.form.addEventListener("submit", function () { input.type = "password"; });
    }
  });
})();
