// vaebook quiz: one multiple-choice question, answered in the browser with no kernel and no network.
// The HTML around it is written by vaebook.widgets.quiz(); this script wires up one quiz by its id.
(function (id) {
  var root = document.getElementById(id);
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  var answer = parseInt(root.dataset.answer, 10);
  var feedback = root.querySelector(".vbq-feedback");
  var buttons = root.querySelectorAll(".vbq-option");
  var notes = JSON.parse(root.querySelector(".vbq-notes").textContent);
  buttons.forEach(function (btn) {
    btn.addEventListener("click", function () {
      var i = parseInt(btn.dataset.index, 10);
      buttons.forEach(function (b) { b.classList.remove("vbq-right", "vbq-wrong"); b.setAttribute("aria-pressed", "false"); });
      btn.setAttribute("aria-pressed", "true");
      var right = i === answer;
      btn.classList.add(right ? "vbq-right" : "vbq-wrong");
      feedback.className = "vbq-feedback " + (right ? "vbq-right" : "vbq-wrong");
      feedback.textContent = (right ? "Correct. " : "Not quite. ") + notes[i];
      root.dataset.answered = right ? "right" : "wrong";
    });
  });
})
