/* The handoff console's live updates (templates/console/*.html), by polling: simple and robust behind any proxy.
 *
 * Detail page: every 2 s GET events.json?after=<highest seq shown>; new messages are appended (as text, never HTML);
 * when the owner, the assignee or the waiting approvals change, the page reloads so the controls match the state
 * (a reply being written is kept in sessionStorage across the reload).
 * List page: every few seconds the queues are fetched again and swapped in place.
 */
(function () {
  "use strict";

  var DETAIL_INTERVAL = 2000;
  var MAX_BACKOFF = 30000;

  function status(root, text) {
    var node = root.querySelector("[data-console-status]");
    if (node && node.textContent !== text) node.textContent = text;
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : "";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function renderMessage(m) {
    var item = el("li", "console-message console-message--" + m.author + " console-message--new");
    item.id = "m" + m.seq;
    item.dataset.seq = m.seq;
    var meta = el("div", "console-message-meta");
    meta.appendChild(el("strong", "", m.author === "customer" ? "Customer" : m.author_name || m.author));
    var when = new Date(m.created_at);
    var stamp = when.toLocaleString(undefined, {
      day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
    meta.appendChild(el("span", "console-quiet", " (" + m.author + ") · #" + m.seq + " · " + stamp));
    item.appendChild(meta);
    var text = el("div", "console-message-text", m.text);
    text.style.whiteSpace = "pre-wrap";
    item.appendChild(text);
    if (m.citations && m.citations.length) {
      var list = el("ul", "console-citations");
      list.setAttribute("aria-label", "Sources");
      m.citations.forEach(function (c) {
        var li = el("li");
        var url = safeUrl(c.url);
        var title = c.title || c.source || "source";
        if (url) {
          var a = el("a", "", title);
          a.href = url;
          a.target = "_blank";
          a.rel = "noopener noreferrer";
          li.appendChild(a);
        } else {
          li.textContent = title;
        }
        if (c.section) li.appendChild(document.createTextNode(" — " + c.section));
        list.appendChild(li);
      });
      item.appendChild(list);
    }
    if (m.choices && m.choices.length) {
      var choices = el("p", "console-choices", "Offered: ");
      m.choices.forEach(function (c) { choices.appendChild(el("span", "console-chip", c.label)); });
      item.appendChild(choices);
    }
    return item;
  }

  function saveDraft(key) {
    var box = document.querySelector("#reply textarea");
    if (box && box.value) sessionStorage.setItem(key, box.value);
  }

  function restoreDraft(key) {
    var box = document.querySelector("#reply textarea");
    var draft = sessionStorage.getItem(key);
    if (box && draft && !box.value) box.value = draft;
    sessionStorage.removeItem(key);
  }

  function detail(root) {
    var url = root.dataset.consoleEvents;
    var lastSeq = parseInt(root.dataset.lastSeq || "0", 10);
    var owner = root.dataset.owner;
    var assignee = root.dataset.assignee || "";
    var approvals = root.dataset.approvals || "";
    var transcript = root.querySelector("[data-console-transcript]");
    var draftKey = "steward.console.draft." + url;
    var delay = DETAIL_INTERVAL;
    restoreDraft(draftKey);
    var form = document.querySelector("#reply form");
    if (form) form.addEventListener("submit", function () { sessionStorage.removeItem(draftKey); });

    function poll() {
      if (document.hidden) return schedule();
      fetch(url + "?after=" + lastSeq, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 403 || response.redirected) throw new Error("signed out");
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          delay = DETAIL_INTERVAL;
          var added = 0;
          data.messages.forEach(function (m) {
            if (m.seq <= lastSeq) return;
            var placeholder = transcript.querySelector("[data-console-placeholder]");
            if (placeholder) placeholder.remove();
            transcript.appendChild(renderMessage(m));
            lastSeq = m.seq;
            added += 1;
          });
          if (added) status(root, added === 1 ? "1 new message." : added + " new messages.");
          else status(root, "Live.");
          var ids = data.approvals.map(function (a) { return String(a.id); }).join(",");
          if (data.owner !== owner || (data.assignee || "") !== assignee || ids !== approvals) {
            status(root, "The conversation changed; reloading…");
            saveDraft(draftKey);
            window.location.reload();
            return;
          }
          schedule();
        })
        .catch(function (error) {
          delay = Math.min(delay * 2, MAX_BACKOFF);
          status(root, error.message === "signed out"
            ? "You are signed out; reload the page to sign in again."
            : "Connection lost; retrying in " + Math.round(delay / 1000) + " s.");
          if (error.message !== "signed out") schedule();
        });
    }

    function schedule() { window.setTimeout(poll, delay); }
    schedule();
  }

  function list(root) {
    var interval = parseInt(root.dataset.consoleRefresh || "8000", 10);

    function refresh() {
      if (document.hidden) return window.setTimeout(refresh, interval);
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok || response.redirected) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("console-queues");
          if (fresh) {
            root.innerHTML = fresh.innerHTML;
            status(root, "Updated " + new Date().toLocaleTimeString() + ".");
          }
        })
        .catch(function () { status(root, "Could not refresh; retrying."); })
        .then(function () { window.setTimeout(refresh, interval); });
    }

    window.setTimeout(refresh, interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var detailRoot = document.querySelector("[data-console-events]");
    if (detailRoot) detail(detailRoot);
    var listRoot = document.querySelector("[data-console-refresh]");
    if (listRoot) list(listRoot);
  });
})();
