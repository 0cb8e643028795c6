// Free-chat page: sends the learner's message, streams the reply (SSE over POST via sse.js),
// and connects the feedback panel (htmx SSE extension) once the session exists. The session's
// id goes into the address (?session=…) once its first turn is stored, so a reload or a shared
// link shows the conversation again (read back from the chat API). "End the conversation" ends
// it (no more messages) and opens its coaching report.
import { SSE } from "/static/vendor/sse.js-2.8.0.js";
import { csrfHeaders } from "/static/csrf.js";
import { ApiError, api, ensureSignedIn, errorText, forgetSignIn, setQuery, ui, wireComposer } from "/static/page.js";
import { connectFeedback, disconnectFeedback, watchFeedback } from "/static/feedback_panel.js";
import { StreamingSpeech, addPlayButton, wireAutoPlay } from "/static/speech.js";
import { wireVoiceInput } from "/static/voice_input.js";

const log = document.getElementById("log");
const composer = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");
const statusLine = document.getElementById("status");
const partner = document.getElementById("partner");
const situation = document.getElementById("situation");
const situationHint = document.getElementById("situation-hint");
const feedbackHint = document.getElementById("feedback-hint");
const endButton = document.getElementById("end-chat");
const endedNotice = document.getElementById("chat-ended");
const chatApi = composer.dataset.chatApi;

let sessionId = "";
let busy = false;
let ended = false;

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

// The conversation is `id` from now on: its feedback panel, the pickers fixed, the address.
function useSession(id) {
  sessionId = id;
  connectFeedback(id);
  partner.disabled = true;
  situation.disabled = true;
  feedbackHint.hidden = true;
  endButton.hidden = ended;
  setQuery({ session: id });
}

// The conversation has ended (here, elsewhere, or before a reload): no more messages; its
// report is a link away, and "new conversation" starts afresh.
function showEnded() {
  ended = true;
  endButton.hidden = true;
  input.disabled = true;
  sendButton.disabled = true;
  document.getElementById("chat-ended-report").href = `/report/${encodeURIComponent(sessionId)}`;
  endedNotice.hidden = false;
}

async function endConversation() {
  if (!sessionId || busy || ended) return;
  busy = true;
  endButton.disabled = true;
  sendButton.disabled = true;
  endButton.textContent = ui.ending;
  statusLine.textContent = "";
  try {
    await api(`${chatApi}/sessions/${encodeURIComponent(sessionId)}/end`, { method: "POST" });
    window.location.assign(`/report/${encodeURIComponent(sessionId)}`);
    return;
  } catch (error) {
    statusLine.textContent = error instanceof ApiError && error.status !== 500 && error.status !== 404
      ? errorText(error)
      : ui.end_chat_failed;
  }
  busy = false;
  endButton.disabled = false;
  sendButton.disabled = false;
  endButton.textContent = endButton.dataset.label;
}

function resetConversation() {
  sessionId = "";
  ended = false;
  endButton.hidden = true;
  endedNotice.hidden = true;
  input.disabled = false;
  sendButton.disabled = false;
  log.replaceChildren();
  disconnectFeedback();
  setQuery({ session: "" });
  feedbackHint.hidden = false;
  partner.disabled = false;
  situation.disabled = false;
  statusLine.textContent = "";
  input.focus();
}

// The engine's own label is Japanese; name it in the page's language.
function engineLabel(engine) {
  if (engine.id === "offline-retrieval") return ui.engine_offline;
  if (engine.id === "local-llm") return engine.model ? `${ui.engine_local} (${engine.model})` : ui.engine_local;
  return engine.label;
}

function engineBadge(li, label) {
  const badge = document.createElement("span");
  badge.className = "engine-badge";
  badge.textContent = label;
  badge.title = ui.engine_title;
  li.appendChild(badge);
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
  // The partner speaks with their own voice: sentence by sentence as the reply streams (auto-play).
  const voice = partner.value;
  const speech = new StreamingSpeech(reply, voice);
  try {
    await ensureSignedIn();
  } catch (_) {
    forgetSignIn();
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
    sendButton.disabled = ended;
    source.close();
    if (!ended) input.focus();
  };

  // Set by `start`: the turn this reply belongs to, to ask about if the stream breaks.
  let turn = null;

  // The session exists once a turn in it is stored: only then is it adopted (a first turn that
  // failed leaves no session behind to send to).
  const adopt = (id) => {
    if (!sessionId) useSession(id);
  };

  source.addEventListener("start", (e) => {
    const data = JSON.parse(e.data);
    turn = { sessionId: data.session_id, userTurnId: data.user_turn_id };
    mine.dataset.turnId = data.user_turn_id;
    const label = engineLabel(data.engine);
    engineBadge(reply, data.cached ? `${label}${ui.cached}` : label);
    statusLine.textContent = ui.replying;
  });
  source.addEventListener("delta", (e) => {
    received += JSON.parse(e.data).text;
    reply.classList.remove("pending");
    reply.querySelector(".body").textContent = received;
    speech.update(received);
    reply.scrollIntoView({ block: "end" });
  });
  source.addEventListener("done", (e) => {
    const data = JSON.parse(e.data);
    reply.querySelector(".body").textContent = data.text;
    reply.dataset.turnId = data.reply_turn_id;
    speech.finish(data.text);
    addPlayButton(reply, voice);
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
    addPlayButton(reply, voice);
    statusLine.textContent = ui.saved_despite_break;
    adopt(turn.sessionId);
    finish();
  };
  source.addEventListener("error", (e) => {
    if (!busy) return;
    if (e.data) {
      if (e.data.includes('"unauthenticated"')) forgetSignIn(); // sign in again on the next send
      if (sessionId && e.responseCode === 409) {
        // The conversation was ended meanwhile (another tab): say so, and offer its report.
        fail(ui.chat_ended);
        showEnded();
        return;
      }
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

wireComposer(composer, input, () => !busy && !ended, send);

document.getElementById("new-chat").addEventListener("click", resetConversation);
endButton.addEventListener("click", endConversation);
situation.addEventListener("change", showSituationHint);
showSituationHint();

watchFeedback(log);
wireAutoPlay(document.getElementById("autoplay"), (text) => {
  statusLine.textContent = text;
});
wireVoiceInput(document.getElementById("mic"), input, (text) => {
  statusLine.textContent = text;
});

// A conversation named in the address (?session=…, a reload or a shared link): show it again,
// with its partner and situation, and carry on in it. Sending waits until it is shown.
async function restore(id) {
  busy = true;
  sendButton.disabled = true;
  statusLine.textContent = ui.conversation_loading;
  try {
    const history = await api(`${chatApi}/sessions/${encodeURIComponent(id)}`);
    for (const m of history.messages) {
      const li = bubble(m.role === "user" ? "user" : "model", m.text);
      li.dataset.turnId = m.turn_id;
      if (m.role !== "user" && m.engine_id) engineBadge(li, engineLabel({ id: m.engine_id, label: m.engine_id }));
      if (m.role !== "user") addPlayButton(li, history.partner);
    }
    if ([...partner.options].some((o) => o.value === history.partner)) partner.value = history.partner;
    if ([...situation.options].some((o) => o.value === history.situation)) situation.value = history.situation;
    showSituationHint();
    useSession(history.session_id);
    if (history.ended_at) showEnded();
    statusLine.textContent = "";
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
      // Not this learner's (or no such) conversation: start a new one instead.
      setQuery({ session: "" });
      statusLine.textContent = ui.conversation_not_found;
    } else {
      statusLine.textContent = ui.conversation_load_failed; // the address stays: a reload tries again
    }
  } finally {
    busy = false;
    sendButton.disabled = ended;
  }
}

const requested = new URLSearchParams(window.location.search).get("session");
if (requested) restore(requested);
