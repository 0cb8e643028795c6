// Free-chat page: sends the learner's message, streams the reply (SSE over POST via sse.js),
// and connects the feedback panel (htmx SSE extension) once the session exists.
import { SSE } from "/static/vendor/sse.js-2.8.0.js";
import { csrfHeaders } from "/static/csrf.js";

const log = document.getElementById("log");
const composer = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");
const statusLine = document.getElementById("status");
const partner = document.getElementById("partner");
const situation = document.getElementById("situation");
const situationHint = document.getElementById("situation-hint");
const feedbackHint = document.getElementById("feedback-hint");
const chatApi = composer.dataset.chatApi;
// The page's wording (ui_text.py), in its language.
const ui = JSON.parse(document.getElementById("ui-text").textContent);
const lang = document.documentElement.lang || "ja";

let sessionId = "";
let busy = false;

// Who the learner is comes from the auth service's access token, kept by the browser in an
// HttpOnly cookie that this script never sees: it only knows when the token runs out.
let tokenExpiresAt = 0;

async function signIn() {
  // The browser's sign-in goes on (its refresh cookie: a returning learner keeps their
  // sessions), or a guest one starts; the tokens come back as HttpOnly cookies.
  const response = await fetch("/api/v2/auth/session", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...csrfHeaders("POST") },
    body: JSON.stringify({ language: lang }),
  });
  if (!response.ok) throw new Error(`sign-in failed: ${response.status}`);
  tokenExpiresAt = Date.now() + ((await response.json()).expires_in - 60) * 1000;
}

async function ensureSignedIn() {
  if (Date.now() >= tokenExpiresAt) await signIn();
}

function bubble(role, content) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = content;
  li.appendChild(body);
  log.appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function showSituationHint() {
  const opt = situation.selectedOptions[0];
  situationHint.textContent = opt ? opt.title : "";
}

function connectFeedback(id) {
  const old = document.getElementById("feedback-stream");
  const fresh = old.cloneNode(false);
  fresh.setAttribute("sse-connect", `/events/sessions/${encodeURIComponent(id)}/feedback?lang=${lang}`);
  old.replaceWith(fresh);
  htmx.process(fresh);
}

function resetConversation() {
  sessionId = "";
  log.replaceChildren();
  const old = document.getElementById("feedback-stream");
  const fresh = old.cloneNode(false);
  fresh.removeAttribute("sse-connect");
  old.replaceWith(fresh);
  feedbackHint.hidden = false;
  partner.disabled = false;
  situation.disabled = false;
  statusLine.textContent = "";
  input.focus();
}

// The engine's own label is Japanese; name it in the page's language.
function engineLabel(engine) {
  if (engine.id === "offline-retrieval") return ui.engine_offline;
  if (engine.id === "local-llm") return `${ui.engine_local} (${engine.model})`;
  return engine.label;
}

// The APIs answer errors as {"error": code, "message": English text}: say the ones a learner
// meets during an outage in the page's language, and anything else as the server put it.
const ERROR_TEXT = { unavailable: "reply_unavailable", not_saved: "reply_not_saved" };

function errorMessage(data, fallback) {
  try {
    const body = JSON.parse(data);
    if (body && ERROR_TEXT[body.error]) return ui[ERROR_TEXT[body.error]];
    if (body && body.message) return body.message;
  } catch (_) { /* not JSON */ }
  return fallback;
}

// The reply stored for a learner turn, from the session's history; null if the turn was not
// stored (or the history cannot be read now).
async function storedReply(turn) {
  try {
    await ensureSignedIn();
    const response = await fetch(`${chatApi}/sessions/${encodeURIComponent(turn.sessionId)}`);
    if (!response.ok) return null;
    const messages = (await response.json()).messages;
    const index = messages.findIndex((m) => m.turn_id === turn.userTurnId);
    return index >= 0 && messages[index + 1] ? messages[index + 1] : null;
  } catch (_) {
    return null;
  }
}

async function send(message) {
  busy = true;
  sendButton.disabled = true;
  const mine = bubble("user", message);
  const reply = bubble("model", "");
  reply.classList.add("pending");
  reply.querySelector(".body").textContent = ui.thinking;
  statusLine.textContent = ui.waiting;
  let received = "";
  try {
    await ensureSignedIn();
  } catch (_) {
    tokenExpiresAt = 0;
    reply.classList.remove("pending");
    reply.classList.add("failed");
    reply.querySelector(".body").textContent = ui.network_failed;
    mine.classList.add("unsent");
    input.value = message;
    statusLine.textContent = ui.unsent_status;
    busy = false;
    sendButton.disabled = false;
    return;
  }

  const source = new SSE(chatApi, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...csrfHeaders("POST") },
    payload: JSON.stringify({
      message,
      session_id: sessionId,
      partner: partner.value,
      situation: situation.value,
    }),
    start: false,
  });

  const finish = () => {
    busy = false;
    sendButton.disabled = false;
    source.close();
    input.focus();
  };

  // Set by `start`: the turn this reply belongs to, to ask about if the stream breaks.
  let turn = null;

  // The session exists once a turn in it is stored: only then is it adopted (a first turn that
  // failed leaves no session behind to send to).
  const adopt = (id) => {
    if (sessionId) return;
    sessionId = id;
    connectFeedback(sessionId);
    partner.disabled = true;
    situation.disabled = true;
    feedbackHint.hidden = true;
  };

  source.addEventListener("start", (e) => {
    const data = JSON.parse(e.data);
    turn = { sessionId: data.session_id, userTurnId: data.user_turn_id };
    mine.dataset.turnId = data.user_turn_id;
    const badge = document.createElement("span");
    badge.className = "engine-badge";
    const label = engineLabel(data.engine);
    badge.textContent = data.cached ? `${label}${ui.cached}` : label;
    badge.title = ui.engine_title;
    reply.appendChild(badge);
    statusLine.textContent = ui.replying;
  });
  source.addEventListener("delta", (e) => {
    received += JSON.parse(e.data).text;
    reply.classList.remove("pending");
    reply.querySelector(".body").textContent = received;
    reply.scrollIntoView({ block: "end" });
  });
  source.addEventListener("done", (e) => {
    const data = JSON.parse(e.data);
    reply.querySelector(".body").textContent = data.text;
    reply.dataset.turnId = data.reply_turn_id;
    statusLine.textContent = "";
    adopt(data.session_id);
    finish();
  });
  const fail = (reason) => {
    reply.classList.remove("pending");
    reply.classList.add("failed");
    reply.querySelector(".body").textContent = reason;
    mine.classList.add("unsent");
    mine.title = ui.unsent_title;
    input.value = message;
    statusLine.textContent = ui.unsent_status;
    finish();
  };
  // The stream broke after the reply began: the turn may or may not have been stored. Ask the
  // conversation's history instead of leaving the learner to guess.
  let settling = false;
  const settleBrokenTurn = async () => {
    if (settling) return;
    settling = true;
    statusLine.textContent = ui.checking_saved;
    const stored = await storedReply(turn);
    if (!stored) {
      fail(ui.network_failed);
      return;
    }
    reply.classList.remove("pending");
    reply.querySelector(".body").textContent = stored.text;
    reply.dataset.turnId = stored.turn_id;
    statusLine.textContent = ui.saved_despite_break;
    adopt(turn.sessionId);
    finish();
  };
  source.addEventListener("error", (e) => {
    if (!busy) return;
    if (e.data) {
      if (e.data.includes('"unauthenticated"')) tokenExpiresAt = 0; // sign in again on the next send
      fail(errorMessage(e.data, ui.reply_failed));
    } else if (turn) {
      settleBrokenTurn();
    } else {
      fail(ui.network_failed);
    }
  });
  source.addEventListener("abort", () => { if (busy) fail(ui.aborted); });
  // The stream ended without `done` or `error` (the server went away between two events).
  source.addEventListener("readystatechange", (e) => {
    if (e.readyState !== SSE.CLOSED || !busy) return;
    if (turn) settleBrokenTurn();
    else fail(ui.network_failed);
  });
  source.stream();
}

composer.addEventListener("submit", (e) => {
  e.preventDefault();
  const message = input.value.trim();
  if (!message || busy) return;
  input.value = "";
  send(message);
});

input.addEventListener("keydown", (e) => {
  // Enter sends; Shift+Enter is a new line; Enter while the IME is composing is not a send.
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    composer.requestSubmit();
  }
});

document.getElementById("new-chat").addEventListener("click", resetConversation);
situation.addEventListener("change", showSituationHint);
showSituationHint();

// The feedback stream is for the signed-in learner only (the HttpOnly cookie goes with it, same
// origin): once the access token has run out it is refused, so sign in again and htmx's next
// attempt to reconnect carries a fresh token.
document.body.addEventListener("htmx:sseError", () => {
  ensureSignedIn().catch(() => { tokenExpiresAt = 0; });
});

// Feedback cards arrive as HTML fragments: fill in what CSP forbids inline (bar widths) and
// the learner's own words for live cards.
document.body.addEventListener("htmx:afterSwap", () => {
  // After a reconnect the server sends the stored cards again: keep one card per turn.
  const seen = new Set();
  for (const card of document.querySelectorAll("#feedback-stream article.card")) {
    if (seen.has(card.dataset.turnId)) card.remove();
    else seen.add(card.dataset.turnId);
  }
  for (const fill of document.querySelectorAll(".card .fill[data-width]")) {
    fill.style.width = `${fill.dataset.width}%`;
    fill.removeAttribute("data-width");
  }
  for (const quote of document.querySelectorAll(".card .quote:empty")) {
    const source = log.querySelector(`[data-turn-id="${quote.dataset.forTurn}"] .body`);
    if (source) quote.textContent = source.textContent;
  }
});
