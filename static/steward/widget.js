/*
 * Steward chat widget: plain JavaScript, no build step, no dependencies. Embed it with one tag:
 *
 *   <script src="https://steward.example.com/static/steward/widget.js" data-title="Brewline help" async></script>
 *
 * data-steward-url (default: the script's own origin), data-title, data-agent-name, data-identity-token.
 * The websocket protocol it speaks is docs/chat-protocol.md; how it behaves is docs/agent/widget.md.
 * The UI lives in an open Shadow DOM so the host page's CSS cannot reach it; every server text is set with
 * textContent, never as HTML.
 */
(function () {
  "use strict";

  const script = document.currentScript || document.querySelector("script[src*='steward/widget.js']");
  if (!script || window.__stewardWidget) return; // embedded twice: the first one wins
  window.__stewardWidget = true;

  const MAX_TEXT = 4000; // the server's limit for a message's text
  const REFUSALS_BEFORE_CHECK = 3; // sockets refused in a row before asking whether the conversation still exists
  const KEEP_MESSAGES = 300; // messages kept in sessionStorage so a reload shows the transcript at once
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const RESEND_AFTER_MS = 5000; // an unacknowledged message is sent again (same client_id) after this
  const GAP_RESUME_MS = 2000; // a hole in the seq numbers still open after this asks for a resume
  const TYPING_EVERY_MS = 3000;
  const TYPING_SHOWN_MS = 4000;
  const WRITING_SHOWN_MS = 30000;
  const CSS_ESCAPE = window.CSS && CSS.escape ? CSS.escape : (s) => s.replace(/["\\]/g, "\\$&");

  const STYLES = `
    :host { all: initial; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
    * { box-sizing: border-box; }
    [hidden] { display: none !important; }
    button { font: inherit; cursor: pointer; }
    button:disabled { cursor: default; opacity: .55; }
    :focus-visible { outline: 3px solid #1a5fd0; outline-offset: 2px; }
    .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
    .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; padding: 12px 20px;
      border: 0; border-radius: 999px; background: #7a3e12; color: #fff; font-size: 15px;
      box-shadow: 0 4px 14px rgba(0,0,0,.25); }
    .panel { position: fixed; right: 20px; bottom: 76px; z-index: 2147483000; width: 370px; max-width: calc(100vw - 40px);
      height: 560px; max-height: calc(100vh - 100px); display: flex; flex-direction: column; background: #fff;
      color: #1d232a; border-radius: 12px; box-shadow: 0 10px 40px rgba(0,0,0,.25); overflow: hidden; font-size: 14px; }
    header { display: flex; justify-content: space-between; align-items: flex-start; padding: 12px 14px;
      background: #7a3e12; color: #fff; }
    h2 { margin: 0; font-size: 16px; }
    .who { margin: 2px 0 0; font-size: 12px; opacity: .9; }
    .close { border: 0; background: transparent; color: #fff; font-size: 22px; line-height: 1; padding: 2px 6px; }
    .banner { margin: 0; padding: 6px 14px; background: #fff4d6; color: #5c4300; font-size: 13px; }
    .log { flex: 1; overflow-y: auto; padding: 12px 14px; display: flex; flex-direction: column; gap: 10px; }
    .msg { max-width: 85%; padding: 8px 11px; border-radius: 10px; background: #f1ede8; align-self: flex-start; }
    .msg.customer { align-self: flex-end; background: #7a3e12; color: #fff; }
    .msg.customer.pending { opacity: .65; }
    .msg.system { align-self: center; background: transparent; color: #555; font-size: 13px; text-align: center; }
    .msg.human { background: #e3eefc; }
    .msg.streaming .text::after { content: "▍"; }
    .author { display: block; font-size: 11px; font-weight: 600; opacity: .75; margin-bottom: 2px; }
    /* "You" and "Steward" are for screen readers only; the bubble's side and colour say it visually. */
    .msg.system .author, .msg.customer .author { position: absolute; width: 1px; height: 1px; overflow: hidden;
      clip: rect(0 0 0 0); white-space: nowrap; }
    .text { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.4; }
    .text table { border-collapse: collapse; margin: 4px 0; font-size: 0.9em; white-space: normal;
      overflow-wrap: normal; }
    .text th, .text td { text-align: left; vertical-align: top; padding: 2px 6px 2px 0;
      border-bottom: 1px solid rgba(0, 0, 0, 0.15); }
    .citations { margin: 6px 0 0; padding: 6px 0 0 16px; border-top: 1px solid #ddd4ca; font-size: 12px; }
    .citations a { color: #7a3e12; }
    .choices { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; justify-content: center; }
    .choices button, .human { border: 1px solid #7a3e12; background: #fff; color: #7a3e12; border-radius: 999px;
      padding: 4px 12px; }
    .feedback { display: flex; gap: 4px; margin-top: 6px; }
    .feedback button { border: 1px solid #cfc4b8; background: #fff; border-radius: 999px; padding: 1px 8px;
      font-size: 13px; line-height: 1.5; }
    .feedback button[aria-pressed="true"] { background: #7a3e12; border-color: #7a3e12; }
    .writing, .notice { margin: 0; padding: 0 14px; font-size: 12px; color: #555; min-height: 0; }
    .notice { color: #8a1c1c; }
    .actions { padding: 6px 14px 0; }
    .composer { display: flex; gap: 8px; padding: 10px 14px 14px; }
    textarea { flex: 1; resize: none; font: inherit; padding: 8px; border: 1px solid #b9aea3; border-radius: 8px; }
    .send { border: 0; border-radius: 8px; background: #7a3e12; color: #fff; padding: 0 16px; }
  `;

  const config = readConfig(script);
  const store = loadStore();
  const seen = new Set(store.messages.map((m) => m.seq)); // every seq rendered: a message is shown once
  let socket = null;
  let connected = false; // true between `hello` and the socket closing
  let attempts = 0; // connection attempts since the last `hello` (for the backoff)
  let refusals = 0; // sockets closed in a row before they opened (see checkConversation)
  let reconnectTimer = null;
  let resendTimer = null;
  let gapTimer = null;
  let typingTimer = null;
  let lastTypingSent = 0;
  let starting = null; // the POST that opens a conversation, while it runs
  const ui = buildUi();

  // --- configuration and storage ------------------------------------------------------------------------------

  function readConfig(tag) {
    const data = tag.dataset;
    const url = (data.stewardUrl || new URL(tag.src, location.href).origin).replace(/\/+$/, "");
    return {
      url: url,
      title: data.title || "Help",
      agentName: data.agentName || "Assistant",
      identityToken: data.identityToken || "",
      storageKey: "steward-chat:" + url,
    };
  }

  function emptyStore() {
    // lastSeq: the highest seq such that every message up to it has been received (what `resume` sends).
    return { id: "", token: "", websocket: "", lastSeq: 0, messages: [], outbox: [], owner: "agent",
      assignee: "", open: false, wantHuman: false, csat: "", feedback: {} };
  }

  function loadStore() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(config.storageKey) || "null");
      return saved && saved.id ? Object.assign(emptyStore(), saved) : emptyStore();
    } catch (err) {
      return emptyStore(); // storage disabled or corrupt: start afresh
    }
  }

  function saveStore() {
    store.messages = store.messages.slice(-KEEP_MESSAGES);
    try {
      sessionStorage.setItem(config.storageKey, JSON.stringify(store));
    } catch (err) {
      // Private mode or full storage: the chat still works, only a reload starts over.
    }
  }

  function newClientId() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    // Fallback for older browsers / insecure origins: a version-4 UUID from getRandomValues or Math.random.
    const bytes = new Uint8Array(16);
    if (window.crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
    else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  // --- DOM --------------------------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function buildUi() {
    const host = el("div", { id: "steward-widget" });
    const root = host.attachShadow({ mode: "open" });
    root.appendChild(el("style", { text: STYLES }));

    const launcher = el("button", { type: "button", className: "launcher", "aria-expanded": "false",
      "aria-controls": "steward-panel", text: config.title, onclick: togglePanel });
    const close = el("button", { type: "button", className: "close", "aria-label": "Close chat", text: "×",
      onclick: closePanel });
    const who = el("p", { className: "who" });
    const banner = el("p", { className: "banner", role: "status", hidden: "" });
    const log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
    const writing = el("p", { className: "writing", "aria-live": "polite" });
    const notice = el("p", { className: "notice", role: "alert" });
    const human = el("button", { type: "button", className: "human", text: "Talk to a person", onclick: askForHuman });
    const restart = el("button", { type: "button", className: "human", text: "Start a new conversation",
      hidden: "", onclick: restartConversation });
    const input = el("textarea", { id: "steward-input", rows: "2", maxlength: String(MAX_TEXT),
      placeholder: "Type your question…", onkeydown: onInputKey, oninput: onInputTyping });
    const send = el("button", { type: "submit", className: "send", text: "Send" });
    const form = el("form", { className: "composer", onsubmit: onSubmit }, [
      el("label", { for: "steward-input", className: "sr-only", text: "Your message" }), input, send,
    ]);
    const panel = el("section", { id: "steward-panel", className: "panel", role: "dialog", "aria-label": config.title,
      hidden: "", onkeydown: onPanelKey }, [
      el("header", {}, [el("div", {}, [el("h2", { text: config.title }), who]), close]),
      banner, log, writing, notice, el("div", { className: "actions" }, [human, restart]), form,
    ]);
    root.append(panel, launcher);
    (document.body || document.documentElement).appendChild(host);
    return { host, launcher, panel, who, banner, log, writing, notice, human, restart, input, send };
  }

  // --- the panel ------------------------------------------------------------------------------------------------

  function togglePanel() {
    if (ui.panel.hidden) openPanel();
    else closePanel();
  }

  function openPanel() {
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    store.open = true;
    saveStore();
    ui.input.focus();
    ui.log.scrollTop = ui.log.scrollHeight;
    ensureConversation();
  }

  function closePanel() {
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    store.open = false;
    saveStore();
    ui.launcher.focus();
  }

  function onPanelKey(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      closePanel();
    }
  }

  function onInputKey(event) {
    // Enter sends, Shift+Enter is a new line (and an IME composing text keeps its Enter).
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      onSubmit(event);
    }
  }

  function onSubmit(event) {
    event.preventDefault();
    const text = ui.input.value.trim();
    if (!text || store.owner === "closed") return;
    ui.input.value = "";
    sendMessage(text);
  }

  function onInputTyping() {
    // `typing` is only shown to a person handling the conversation; the AI does not need it (and it costs frames).
    const now = Date.now();
    if (store.owner === "human" && now - lastTypingSent > TYPING_EVERY_MS && sendFrame({ type: "typing" })) {
      lastTypingSent = now;
    }
  }

  // --- opening a conversation and the connection -----------------------------------------------------------------

  function ensureConversation() {
    if (store.id) {
      if (!socket) connect();
      return Promise.resolve();
    }
    if (!starting) starting = startConversation().finally(() => { starting = null; });
    return starting;
  }

  async function startConversation() {
    setBanner("Connecting…");
    const body = { origin_url: location.href.slice(0, 1000) };
    if (config.identityToken) body.identity_token = config.identityToken;
    try {
      const response = await fetch(config.url + "/api/chat/conversations/", {
        method: "POST", mode: "cors", credentials: "omit",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (response.status === 403) {
        // This page's origin is not on STEWARD_WIDGET_ORIGINS: asking again will not help.
        setBanner("Chat isn't available on this page.");
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const answer = await response.json();
      if (answer.identity_error) console.warn("Steward: identity token not accepted:", answer.identity_error);
      Object.assign(store, { id: answer.id, token: answer.token, websocket: answer.websocket });
      saveStore();
      connect();
    } catch (err) {
      console.warn("Steward: could not open a conversation:", err);
      attempts += 1;
      scheduleReconnect("We couldn't reach the chat. Retrying…");
    }
  }

  function socketUrl() {
    return config.url.replace(/^http/, "ws") + store.websocket;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (!navigator.onLine) return setOffline(); // the `online` event reconnects
    if (socket) dropSocket(); // e.g. an `online` event while still connected: never two sockets at once
    attempts += 1;
    setBanner(attempts > 1 ? "Reconnecting…" : "Connecting…");
    const ws = new WebSocket(socketUrl());
    let opened = false;
    socket = ws;
    ws.onopen = () => { opened = true; refusals = 0; };
    ws.onmessage = (event) => { if (socket === ws) onFrame(event.data); };
    ws.onclose = () => {
      if (socket !== ws) return; // an old socket we already replaced
      socket = null;
      connected = false;
      updateControls();
      if (!opened && ++refusals >= REFUSALS_BEFORE_CHECK) checkConversation();
      else scheduleReconnect();
    };
  }

  // A browser cannot tell a refused handshake (the saved conversation is gone: a database reset, another deployment's
  // token) from a network failure. After a few refusals, ask over HTTP; a 404 means start a new conversation.
  async function checkConversation() {
    refusals = 0;
    try {
      const response = await fetch(
        config.url + "/api/chat/conversations/" + encodeURIComponent(store.id) + "/?token=" +
          encodeURIComponent(store.token), { mode: "cors", credentials: "omit" });
      if (response.status === 404) {
        console.warn("Steward: the saved conversation is no longer there; starting a new one.");
        return restartConversation(true);
      }
    } catch (err) {
      // Not reachable either: keep retrying the socket with backoff.
    }
    scheduleReconnect();
  }

  function scheduleReconnect(message) {
    if (reconnectTimer) return;
    if (!navigator.onLine) return setOffline();
    // Exponential backoff with jitter (a random point in the upper half of the step), so that many widgets cut off
    // by one server restart do not all come back in the same second.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempts, 10));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    setBanner(message || "Connection lost. Reconnecting…");
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      if (store.id) connect();
      else ensureConversation();
    }, delay);
  }

  function dropSocket() {
    const old = socket;
    socket = null;
    connected = false;
    if (old) old.close();
    updateControls();
  }

  function setOffline() {
    dropSocket();
    setBanner("You're offline. Messages you write will be sent when the connection is back.");
  }

  window.addEventListener("offline", () => {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    setOffline();
  });
  window.addEventListener("online", () => {
    attempts = 0;
    if (store.id) connect();
    else if (store.open) ensureConversation();
  });

  function sendFrame(frame) {
    if (!connected || !socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  // --- frames from the server (docs/chat-protocol.md, "Server → client") ------------------------------------------

  function onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (err) {
      return;
    }
    const handler = HANDLERS[frame && frame.type];
    if (handler) handler(frame);
  }

  const HANDLERS = {
    // The connection is accepted: ask for everything after the last seq we hold, then re-send the outbox. The
    // server answers a resent client_id with its original seq and never answers it twice.
    hello(frame) {
      connected = true;
      attempts = 0;
      setBanner("");
      setOwner(frame.owner, store.assignee);
      sendFrame({ type: "resume", last_seq: store.lastSeq });
      for (const item of store.outbox) item.sent_at = 0; // what went out on the old socket may have been lost
      flushOutbox();
      if (store.wantHuman && store.owner === "agent" && sendFrame({ type: "request_human" })) {
        store.wantHuman = false;
        saveStore();
      }
      updateControls();
    },

    ack(frame) {
      const item = takeFromOutbox(frame.client_id);
      if (!item || seen.has(frame.seq)) return;
      // The ack may come before the message's echo: record it now so a reload or resume never shows it twice.
      acceptMessage({ type: "message", seq: frame.seq, author: "customer", author_name: "",
        client_id: frame.client_id, text: item.text, citations: [], choices: [] });
      showWriting(store.owner === "agent" ? config.agentName + " is writing…" : "", WRITING_SHOWN_MS);
    },

    message(frame) {
      if (typeof frame.seq !== "number" || seen.has(frame.seq)) return; // a resume overlapping what we have
      if (frame.client_id && takeFromOutbox(frame.client_id) && store.owner === "agent") {
        showWriting(config.agentName + " is writing…", WRITING_SHOWN_MS); // our message's echo overtook its ack
      }
      if (frame.author === "agent" || frame.author === "human") {
        clearDeltas();
        showWriting("");
      }
      acceptMessage(frame);
    },

    // Streamed text of a reply being written: each delta's text is appended to that turn's placeholder bubble; the
    // final `message` replaces the placeholder.
    delta(frame) {
      let bubble = ui.log.querySelector(`[data-turn="${CSS_ESCAPE(String(frame.turn))}"]`);
      if (!bubble) {
        bubble = messageNode({ author: "agent", author_name: config.agentName, text: "" });
        bubble.dataset.turn = String(frame.turn);
        bubble.classList.add("streaming");
        ui.log.appendChild(bubble);
      }
      bubble.querySelector(".text").textContent += String(frame.text || "");
      showWriting("");
      scrollToEnd();
    },

    typing(frame) {
      if (frame.author === "customer") return; // our own typing, echoed from another tab
      const name = frame.author === "human" ? store.assignee || "A person" : config.agentName;
      showWriting(name + " is typing…", TYPING_SHOWN_MS);
    },

    state(frame) {
      setOwner(frame.owner, frame.assignee || "");
    },

    csat_request() {
      if (store.csat) return;
      store.csat = "asked";
      saveStore();
      renderCsat();
    },

    csat_thanks() {
      store.csat = "done";
      saveStore();
      renderCsat();
    },

    // The server recorded a thumbs up / down: only now is the button shown pressed (a refusal leaves it as it was).
    feedback_thanks(frame) {
      if (typeof frame.seq !== "number" || typeof frame.helpful !== "boolean") return;
      store.feedback[frame.seq] = frame.helpful;
      saveStore();
      showFeedback(frame.seq);
    },

    error(frame) {
      const polite = {
        rate_limited: "You're sending messages quickly. Please wait a moment; we'll send yours shortly.",
        too_long: "That message is too long. Please shorten it.",
        unavailable: "The assistant is briefly unavailable. Please try again shortly.",
      };
      showNotice(polite[frame.code] || "Something went wrong: " + String(frame.message || frame.code));
    },

    pong(frame) {
      console.debug("Steward: pong from", frame.worker);
    },
  };

  // --- messages, seq and the outbox -----------------------------------------------------------------------------

  function acceptMessage(frame) {
    seen.add(frame.seq);
    store.messages.push(frame);
    store.messages.sort((a, b) => a.seq - b.seq);
    // Advance lastSeq only over a contiguous run: an ack can overtake an earlier reply still on its way, and a
    // resume from past the hole would lose that reply.
    while (seen.has(store.lastSeq + 1)) store.lastSeq += 1;
    saveStore();
    renderMessage(frame);
    watchForGap();
  }

  function watchForGap() {
    clearTimeout(gapTimer);
    const highest = Math.max(0, ...seen);
    if (highest > store.lastSeq) {
      gapTimer = setTimeout(() => sendFrame({ type: "resume", last_seq: store.lastSeq }), GAP_RESUME_MS);
    }
  }

  function sendMessage(text) {
    const item = { client_id: newClientId(), text: text.slice(0, MAX_TEXT), sent_at: 0 };
    store.outbox.push(item);
    saveStore();
    renderPending(item);
    disableAnsweredChoices();
    if (!store.id) ensureConversation(); // the outbox is flushed on `hello`
    else flushOutbox();
  }

  function flushOutbox() {
    const now = Date.now();
    for (const item of store.outbox) {
      if (now - item.sent_at < RESEND_AFTER_MS) continue;
      if (!sendFrame({ type: "message", client_id: item.client_id, text: item.text })) break;
      item.sent_at = now;
    }
    saveStore();
    // Anything still unacknowledged (rate limited, lost with a socket) is tried again, with the same client_id.
    clearTimeout(resendTimer);
    if (store.outbox.length) resendTimer = setTimeout(flushOutbox, RESEND_AFTER_MS);
  }

  function takeFromOutbox(clientId) {
    const item = store.outbox.find((i) => i.client_id === clientId);
    if (item) {
      store.outbox = store.outbox.filter((i) => i !== item);
      saveStore();
    }
    return item;
  }

  // --- rendering ----------------------------------------------------------------------------------------------------

  function messageNode(frame) {
    const who = frame.author === "customer" ? "You" : frame.author_name || (frame.author === "agent"
      ? config.agentName : frame.author === "human" ? store.assignee || "Support" : "");
    return el("div", { className: "msg " + (frame.author || "system") }, [
      el("span", { className: "author", text: who }),
      textNode(String(frame.text || "")),
    ]);
  }

  // A message's text as the customer reads it. Quoted table rows ("Option | Cost", the header row first) become a
  // table; everything else stays plain text (textContent only: server text is never markup). data-text keeps the
  // text as stored.
  function textNode(text) {
    const node = el("div", { className: "text" });
    fillText(node, text);
    return node;
  }

  function fillText(node, text) {
    node.replaceChildren();
    node.dataset.text = text;
    const lines = text.split("\n");
    const cells = (line) => line.split(" | ").map((cell) => cell.trim());
    for (let i = 0; i < lines.length; ) {
      let end = i;
      const width = cells(lines[i]).length;
      while (width > 1 && end < lines.length && cells(lines[end]).length === width) end += 1;
      if (end - i >= 2) {
        const [head, ...rows] = lines.slice(i, end).map(cells);
        node.appendChild(el("table", {}, [
          el("thead", {}, [el("tr", {}, head.map((cell) => el("th", { scope: "col", text: cell })))]),
          el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell) => el("td", { text: cell }))))),
        ]));
        i = end;
      } else {
        node.appendChild(document.createTextNode(lines[i] + (i + 1 < lines.length ? "\n" : "")));
        i += 1;
      }
    }
  }

  function renderMessage(frame) {
    const pending = frame.client_id && ui.log.querySelector(`[data-client-id="${CSS_ESCAPE(frame.client_id)}"]`);
    const node = pending || messageNode(frame);
    if (pending) {
      node.classList.remove("pending");
      fillText(node.querySelector(".text"), String(frame.text || ""));
      node.remove();
    }
    node.dataset.seq = String(frame.seq);
    if (frame.client_id) node.dataset.clientId = frame.client_id;
    if (Array.isArray(frame.citations) && frame.citations.length) node.appendChild(citationsNode(frame.citations));
    if (Array.isArray(frame.choices) && frame.choices.length) node.appendChild(choicesNode(frame.choices));
    if (frame.author === "agent" && !node.querySelector(".feedback")) node.appendChild(feedbackNode(frame.seq));
    insertBySeq(node, frame.seq);
    disableAnsweredChoices();
    scrollToEnd();
  }

  function insertBySeq(node, seq) {
    // Messages stay in seq order; pending bubbles, streaming replies and notices stay after them.
    for (const child of ui.log.children) {
      if (!child.dataset.seq || Number(child.dataset.seq) > seq) return ui.log.insertBefore(node, child);
    }
    ui.log.appendChild(node);
  }

  function renderPending(item) {
    const node = messageNode({ author: "customer", text: item.text });
    node.classList.add("pending");
    node.dataset.clientId = item.client_id;
    ui.log.appendChild(node);
    scrollToEnd();
  }

  function citationsNode(citations) {
    const list = el("ul", { className: "citations", "aria-label": "Sources" });
    const shown = new Set(); // two passages of one article are one source to the reader
    for (const citation of citations) {
      const title = citation.title || citation.document_title || citation.url || "Source";
      const label = citation.section && citation.section !== title ? title + " — " + citation.section : title;
      if (shown.has(label + "\n" + citation.url)) continue;
      shown.add(label + "\n" + citation.url);
      const safe = /^https?:\/\//i.test(String(citation.url || "")); // never a javascript: link
      const link = safe ? el("a", { href: citation.url, target: "_blank", rel: "noopener", text: label })
        : el("span", { text: label });
      list.appendChild(el("li", {}, [link]));
    }
    return list;
  }

  function choicesNode(choices) {
    const box = el("div", { className: "choices", role: "group", "aria-label": "Choose an answer" });
    for (const choice of choices) {
      const value = String(choice.value || choice.label || "");
      box.appendChild(el("button", { type: "button", text: String(choice.label || value), onclick: () => {
        if (store.owner !== "closed") sendMessage(value);
      } }));
    }
    return box;
  }

  // Thumbs up / down under each of the assistant's replies: toggle buttons (aria-pressed) that send `feedback`.
  function feedbackNode(seq) {
    const box = el("div", { className: "feedback", role: "group", "aria-label": "Was this reply helpful?" });
    for (const [helpful, label, icon] of [[true, "Helpful", "👍"], [false, "Not helpful", "👎"]]) {
      box.appendChild(el("button", { type: "button", "aria-label": label, title: label, text: icon,
        "data-helpful": String(helpful), "aria-pressed": String(store.feedback[seq] === helpful),
        onclick: () => rateReply(seq, helpful) }));
    }
    return box;
  }

  function rateReply(seq, helpful) {
    if (store.feedback[seq] === helpful) return; // already so: the server would record nothing
    if (!sendFrame({ type: "feedback", seq: seq, helpful: helpful })) showNotice("Not connected; try again.");
  }

  function showFeedback(seq) {
    const box = ui.log.querySelector(`.msg[data-seq="${CSS_ESCAPE(String(seq))}"] .feedback`);
    if (!box) return;
    for (const button of box.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(store.feedback[seq] === (button.dataset.helpful === "true")));
    }
  }

  function disableAnsweredChoices() {
    // A message's buttons are spent once the customer has written anything after it.
    const customer = ui.log.querySelectorAll(".msg.customer");
    const last = customer[customer.length - 1];
    if (!last) return;
    for (const box of ui.log.querySelectorAll(".choices")) {
      const message = box.closest(".msg");
      if (message.compareDocumentPosition(last) & Node.DOCUMENT_POSITION_FOLLOWING) {
        for (const button of box.querySelectorAll("button")) button.disabled = true;
      }
    }
  }

  function clearDeltas() {
    for (const node of ui.log.querySelectorAll("[data-turn]")) node.remove();
  }

  function renderCsat() {
    const old = ui.log.querySelector(".csat");
    if (old) old.remove();
    if (!store.csat) return;
    const box = el("div", { className: "msg system csat" });
    if (store.csat === "done") {
      box.appendChild(el("p", { className: "text", text: "Thanks for your feedback!" }));
    } else {
      box.appendChild(el("p", { className: "text", id: "steward-csat-q", text: "How did we do? (1 = poor, 5 = great)" }));
      const scale = el("div", { className: "choices", role: "group", "aria-labelledby": "steward-csat-q" });
      for (let score = 1; score <= 5; score++) {
        scale.appendChild(el("button", { type: "button", text: String(score), "aria-label": score + " out of 5",
          onclick: () => sendFrame({ type: "csat", score: score }) || showNotice("Not connected; try again.") }));
      }
      box.appendChild(scale);
    }
    ui.log.appendChild(box);
    scrollToEnd();
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  // --- status: who is answering, connection, notices -------------------------------------------------------------

  function setOwner(owner, assignee) {
    store.owner = owner || "agent";
    store.assignee = assignee || "";
    saveStore();
    const text = {
      agent: config.agentName + " (AI) is answering",
      waiting: "Waiting for a person from our team…",
      human: (store.assignee || "A person from our team") + " is answering",
      closed: "This conversation has ended",
    }[store.owner] || "";
    ui.who.textContent = text;
    ui.panel.dataset.owner = store.owner;
    updateControls();
  }

  function updateControls() {
    const closed = store.owner === "closed";
    ui.human.hidden = closed;
    ui.human.disabled = !connected || store.owner !== "agent" || store.wantHuman;
    ui.restart.hidden = !closed;
    ui.input.disabled = closed;
    ui.send.disabled = closed;
    ui.launcher.dataset.connection = connected ? "online" : "offline";
  }

  function setBanner(text) {
    ui.banner.textContent = text;
    ui.banner.hidden = !text;
    ui.panel.dataset.connection = connected ? "online" : text ? "offline" : "idle";
  }

  function showNotice(text) {
    ui.notice.textContent = text;
    clearTimeout(showNotice.timer);
    showNotice.timer = setTimeout(() => { ui.notice.textContent = ""; }, 8000);
  }

  function showWriting(text, forMs) {
    ui.writing.textContent = text;
    clearTimeout(typingTimer);
    if (text) typingTimer = setTimeout(() => { ui.writing.textContent = ""; }, forMs);
  }

  function askForHuman() {
    if (store.owner !== "agent") return;
    if (!sendFrame({ type: "request_human" })) {
      store.wantHuman = true; // sent after the next `hello`
      saveStore();
    }
    ui.human.disabled = true;
  }

  // `byItself`: the saved conversation was gone (checkConversation); the panel stays as it was, focus stays put.
  function restartConversation(byItself) {
    dropSocket();
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    // What the customer wrote to the lost conversation is not lost: it goes to the new one.
    const kept = byItself === true ? { open: store.open, outbox: store.outbox } : { open: true };
    Object.assign(store, emptyStore(), kept);
    seen.clear();
    ui.log.replaceChildren();
    setOwner("agent", "");
    saveStore();
    ensureConversation();
    if (byItself !== true) ui.input.focus();
  }

  // --- start --------------------------------------------------------------------------------------------------------

  function restore() {
    for (const frame of store.messages) renderMessage(frame);
    for (const item of store.outbox) {
      item.sent_at = 0; // a new page: send again on `hello`
      renderPending(item);
    }
    renderCsat();
    setOwner(store.owner, store.assignee);
    if (store.id) connect();
    if (store.open) openPanel();
  }

  restore();
})();
