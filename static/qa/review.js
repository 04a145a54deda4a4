/* The QA review screen's keyboard and live score (templates/qa/item.html). No build step, no dependencies.
 *
 * j / k: next / previous criterion · p / f / n: pass / fail / n/a, then the next criterion · c: comment ·
 * 1 / 2 / 3: the labels (yes, again for no) · t: show or hide the turn traces · Ctrl+Enter: submit · Esc: leave a field.
 * The score shown is the server's formula (qa/scoring.py): the weighted share of applicable passes; a failed
 * auto-fail criterion fails the review. The server computes it again on submit.
 */
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && !/^(radio|checkbox|button|submit)$/i.test(target.type));
  }

  function init(form) {
    var all = Array.prototype.slice.call(form.querySelectorAll("[data-criterion]"));
    // The keys move between the criteria to judge; the ones that do not apply are n/a already.
    var criteria = all.filter(function (f) { return f.querySelector("input[type=radio]"); });
    var current = -1;
    var mark = parseFloat(form.dataset.passMark || "80");
    var scoreNode = form.querySelector("[data-qa-score]");
    var verdictNode = form.querySelector("[data-qa-verdict]");

    function resultOf(fieldset) {
      var checked = fieldset.querySelector("input[type=radio]:checked");
      var hidden = fieldset.querySelector("input[type=hidden][name^=result-]");
      return checked ? checked.value : hidden ? hidden.value : "";
    }

    function rescore() {
      var total = 0, passed = 0, autoFailed = false, missing = 0;
      all.forEach(function (fieldset) {
        var result = resultOf(fieldset), weight = parseInt(fieldset.dataset.weight, 10) || 1;
        if (!result) { missing += 1; return; }
        if (result === "na") return;
        total += weight;
        if (result === "pass") passed += weight;
        if (result === "fail" && fieldset.dataset.autoFail === "1") autoFailed = true;
      });
      var score = total ? Math.round(1000 * passed / total) / 10 : null;
      scoreNode.textContent = score === null ? "—" : String(score);
      var ok = !autoFailed && (score === null || score >= mark);
      verdictNode.className = ok ? "pass" : "fail";
      verdictNode.textContent = (ok ? "passes" : autoFailed ? "fails (auto-fail)" : "fails") +
        (missing ? " · " + missing + " to answer" : "");
    }

    function focusCriterion(index) {
      if (!criteria.length) return;
      current = Math.max(0, Math.min(criteria.length - 1, index));
      criteria.forEach(function (fieldset, i) { fieldset.classList.toggle("qa-criterion--current", i === current); });
      criteria[current].focus({ preventScroll: true });
      criteria[current].scrollIntoView({ block: "nearest" });
    }

    function setResult(value) {
      if (!criteria.length) return;
      if (current < 0) focusCriterion(0);
      var radio = criteria[current].querySelector("input[type=radio][value=" + value + "]");
      if (radio) { radio.checked = true; rescore(); }
      if (current < criteria.length - 1) focusCriterion(current + 1);
    }

    function cycleLabel(key) {
      var group = form.querySelector("[data-qa-label][data-key='" + key + "']");
      if (!group) return;
      var yes = group.querySelector("input[value=yes]"), no = group.querySelector("input[value=no]");
      if (yes.checked) { no.checked = true; } else { yes.checked = true; }
      group.classList.add("qa-label--flash");
      setTimeout(function () { group.classList.remove("qa-label--flash"); }, 300);
    }

    function toggleTraces() {
      var traces = document.querySelectorAll("details.console-trace");
      var open = !Array.prototype.some.call(traces, function (d) { return d.open; });
      traces.forEach(function (d) { d.open = open; });
    }

    form.addEventListener("change", rescore);
    criteria.forEach(function (fieldset, i) {
      fieldset.addEventListener("focusin", function () {
        current = i;
        criteria.forEach(function (f, j) { f.classList.toggle("qa-criterion--current", j === i); });
      });
    });

    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
        return;
      }
      if (event.key === "Escape" && typing(event.target)) {
        event.target.blur();
        if (current >= 0) criteria[current].focus({ preventScroll: true });
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      var handled = true;
      switch (event.key) {
        case "j": focusCriterion(current + 1); break;
        case "k": focusCriterion(current - 1); break;
        case "p": setResult("pass"); break;
        case "f": setResult("fail"); break;
        case "n": setResult("na"); break;
        case "c":
          if (current < 0) focusCriterion(0);
          if (criteria[current]) criteria[current].querySelector(".qa-comment").focus();
          break;
        case "1": case "2": case "3": cycleLabel(event.key); break;
        case "t": toggleTraces(); break;
        default: handled = false;
      }
      if (handled) event.preventDefault();
    });

    // The traces are what a reviewer judges: open them. Then start on the first criterion still to answer.
    document.querySelectorAll("details.console-trace").forEach(function (d) { d.open = true; });
    rescore();
    var firstOpen = criteria.findIndex(function (f) { return !resultOf(f); });
    focusCriterion(firstOpen >= 0 ? firstOpen : 0);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-qa-scorecard]");
    if (form) init(form);
  });
})();
