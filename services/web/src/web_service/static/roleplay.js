// Roleplay page: the session's conversation (read back from the scenario API, so a reload or a
// shared link shows it again), the learner's message with the character's reply streaming in
// (SSE over POST via sse.js), the live feedback panel, the end button, and the closing state
// once the roleplay has ended (by its script, its turn limit or the learner).
import { SSE } from "/static/vendor/sse.js-2.8.0.js";
import { csrfHeaders } from "/static/csrf.js";
import { ApiError, api, ensureSignedIn, errorText, forgetSignIn, format, retryAfterSeconds, ui, waitText, wireComposer } from "/static/page.js";
import { connectFeedback, watchFeedback } from "/static/feedback_panel.js";
import { StreamingSpeech, addPlayButton, wireAutoPlay } from "/static/speech.js";
import { wireVoiceInput } from "/static/voice_input.js";

const byId = (id) => document.getElementById(id);
const root = byId("roleplay");
const scenarioApi = root.dataset.scenarioApi;
const sessionId = root.dataset.sessionId;
const sessionUrl = `${scenarioApi}/sessions/${encodeURIComponent(sessionId)}`;

const loadStatus = byId("rp-load-status");
const head = byId("rp-head");
const log = byId("log");
const play = byId("play");
const composer = byId("composer");
const input = byId("message");
const sendButton = byId("send");
const endButton = byId("end");
const statusLine = byId("status");
const counter = byId("turn-counter");
const closing = byId("closing");
const feedbackHint = byId("feedback-hint");

let scenario = null;
let learnerTurns = 0;
let busy = false;
let ended = false;

function bubble(role, text) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  if (role === "model" && scenario) {
    const speaker = document.createElement("span");
    speaker.className = "speaker";
    speaker.textContent = scenario.character.full_name;
    li.appendChild(speaker);
  }
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = text;
  li.appendChild(body);
  // The character's lines can be heard in the character's own voice.
  if (role === "model" && scenario) addPlayButton(li, scenario.character.id, scenario.language);
  log.appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function countTurn() {
  learnerTurns += 1;
  feedbackHint.hidden = true;
  showCounter();
}

function showCounter() {
  counter.textContent = format(ui.turn_counter, { n: learnerTurns, max: scenario.max_turns });
}

function setBusy(value) {
  busy = value;
  sendButton.disabled = value;
  endButton.disabled = value;
}

function reasonText(reason) {
  if (reason === "completed") return ui.ended_completed;
  if (reason === "timeout") return format(ui.ended_timeout, { n: scenario.max_turns });
  if (reason === "user") return ui.ended_user;
  return ui.ended_other;
}

// The roleplay has ended: no more messages; say why, and where to go from here. `announce`:
// it ended just now (focus moves to the closing part, which screen readers then read).
function showClosing(reason, announce) {
  ended = true;
  root.classList.add("ended");
  play.hidden = true;
  byId("closing-reason").textContent = reasonText(reason);
  if (scenario.consent) {
    byId("closing-help-text").textContent = scenario.consent.help;
    byId("closing-help").hidden = false;
  }
  closing.hidden = false;
  if (announce) closing.focus();
}

// How the roleplay ended, from the stored session (it may have ended elsewhere, e.g. another tab).
async function endedReason() {
  try {
    return (await api(sessionUrl)).end_reason || "";
  } catch (_) {
    return "";
  }
}

function fillList(list, items) {
  list.replaceChildren(
    ...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
}

function showScenario() {
  document.title = `${scenario.title} | ${ui.roleplay_title}`;
  byId("rp-title").textContent = scenario.title;
  byId("rp-partner").textContent = format(ui.partner_is, { label: scenario.character.full_name });
  byId("rp-partner-role").textContent = scenario.character.role;
  byId("rp-goal").textContent = scenario.goal;
  byId("rp-role").textContent = scenario.learner_role;
  byId("rp-situation").textContent = scenario.situation;
  fillList(byId("rp-criteria"), scenario.criteria.map((c) => c.text));
  byId("try-again").href = `/scenarios/${encodeURIComponent(scenario.id)}`;
  head.hidden = false;
}

function loadFailed(message) {
  loadStatus.textContent = message;
  loadStatus.classList.add("failed");
  const back = document.createElement("a");
  back.href = "/scenarios";
  back.textContent = ui.back_to_catalogue;
  loadStatus.append(" ", back);
}

async function load() {
  let session;
  try {
    session = await api(sessionUrl);
  } catch (error) {
    const gone = error instanceof ApiError && (error.status === 404 || error.status === 422);
    loadFailed(gone ? ui.roleplay_not_found : ui.roleplay_load_failed);
    return;
  }
  scenario = session.scenario;
  showScenario();
  for (const turn of session.turns) {
    const li = bubble(turn.role === "user" ? "user" : "model", turn.text);
    li.dataset.turnId = turn.turn_id;
    if (turn.role === "user") learnerTurns += 1;
  }
  if (learnerTurns) feedbackHint.hidden = true;
  showCounter();
  loadStatus.hidden = true;
  connectFeedback(sessionId);
  if (session.ended_at) {
    showClosing(session.end_reason, false);
  } else {
    play.hidden = false;
    input.focus({ preventScroll: true });
  }
}

// The reply stored for a learner turn, and whether the session has ended, from the session;
// null if the turn was not stored (or the session cannot be read now).
async function storedReply(userTurnId) {
  try {
    const session = await api(sessionUrl);
    const index = session.turns.findIndex((t) => t.turn_id === userTurnId);
    if (index < 0 || !session.turns[index + 1]) return null;
    return { turn: session.turns[index + 1], endReason: session.ended_at ? session.end_reason || "" : null };
  } catch (_) {
    return null;
  }
}

// What a refused send says, by the status the API answered before any reply began.
function refusalText(status, body, retryAfter) {
  if (status === 409) return ui.ended_conflict;
  if (status === 429) return format(ui.rate_limited_send, { wait: waitText(retryAfter) });
  if (status === 503 || status === 502 || status === 504) return ui.reply_unavailable;
  if (status === 404) return ui.roleplay_not_found;
  if (status === 400 || status === 422) return ui.message_invalid;
  if (status === 403 && body.error === "csrf") return ui.err_csrf;
  if (status === 0) return ui.network_failed;
  return ui.reply_failed;
}

function parse(data) {
  try {
    return JSON.parse(data) || {};
  } catch (_) {
    return {};
  }
}

async function send(message, retried = false) {
  setBusy(true);
  const mine = bubble("user", message);
  const reply = bubble("model", ui.thinking);
  reply.classList.add("pending");
  statusLine.textContent = ui.waiting;
  let source = null;
  let settled = false;
  let turn = null; // set by `start`: the learner turn this reply belongs to
  let received = "";
  let retryAfter = 0;
  const speech = new StreamingSpeech(reply, scenario.character.id, scenario.language);

  const finish = () => {
    settled = true;
    setBusy(false);
    source?.close();
    if (!ended) input.focus();
  };
  const fail = (reason) => {
    if (settled) return;
    reply.classList.remove("pending");
    reply.classList.add("failed");
    reply.querySelector(".body").textContent = reason;
    mine.classList.add("unsent");
    mine.title = ui.unsent_title;
    input.value = message;
    statusLine.textContent = ui.unsent_status;
    finish();
  };

  try {
    await ensureSignedIn();
  } catch (_) {
    forgetSignIn();
    fail(ui.network_failed);
    return;
  }

  source = new SSE(`${sessionUrl}/messages`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...csrfHeaders("POST") },
    payload: JSON.stringify({ message }),
    start: false,
  });

  source.addEventListener("open", (e) => {
    retryAfter = retryAfterSeconds(e.headers?.["retry-after"]?.[0], null);
  });
  source.addEventListener("start", (e) => {
    const data = parse(e.data);
    turn = data.user_turn_id;
    mine.dataset.turnId = turn;
    statusLine.textContent = ui.replying;
  });
  source.addEventListener("delta", (e) => {
    received += parse(e.data).text || "";
    reply.classList.remove("pending");
    reply.querySelector(".body").textContent = received;
    speech.update(received);
    reply.scrollIntoView({ block: "end" });
  });
  source.addEventListener("done", (e) => {
    if (settled) return;
    const data = parse(e.data);
    reply.classList.remove("pending");
    reply.querySelector(".body").textContent = data.text;
    reply.dataset.turnId = data.reply_turn_id;
    speech.finish(data.text);
    statusLine.textContent = "";
    countTurn();
    finish();
    if (data.session_ended) showClosing(data.end_reason, true);
  });

  // The stream broke after the reply began: the turn may or may not have been stored. Ask the
  // session instead of leaving the learner to guess.
  let settling = false;
  const settleBrokenTurn = async () => {
    if (settling || settled) return;
    settling = true;
    statusLine.textContent = ui.checking_saved;
    const stored = await storedReply(turn);
    if (!stored) {
      fail(ui.network_failed);
      return;
    }
    reply.classList.remove("pending");
    reply.querySelector(".body").textContent = stored.turn.text;
    reply.dataset.turnId = stored.turn.turn_id;
    statusLine.textContent = ui.saved_despite_break;
    countTurn();
    finish();
    if (stored.endReason !== null) showClosing(stored.endReason, true);
  };

  source.addEventListener("error", async (e) => {
    if (settled || settling) return;
    if (typeof e.responseCode === "number" && e.responseCode !== 200) {
      // Refused before any reply: nothing was stored.
      const body = parse(e.data);
      if (e.responseCode === 401 && !retried) {
        // The access token ran out: sign in again and send once more.
        settled = true;
        source.close();
        mine.remove();
        reply.remove();
        forgetSignIn();
        send(message, true);
        return;
      }
      fail(refusalText(e.responseCode, body, retryAfter || retryAfterSeconds(null, body)));
      if (e.responseCode === 409) showClosing(await endedReason(), true);
    } else if (e.data) {
      // The service's own error event, after the reply began: the turn was not stored.
      const body = parse(e.data);
      fail(body.error === "unavailable" ? ui.reply_unavailable : ui.reply_failed);
    } else if (turn) {
      settleBrokenTurn();
    } else {
      fail(ui.network_failed);
    }
  });
  source.addEventListener("abort", () => fail(ui.aborted));
  // The stream ended without `done` or `error` (the server went away between two events).
  source.addEventListener("readystatechange", (e) => {
    if (e.readyState !== SSE.CLOSED || settled) return;
    if (turn) settleBrokenTurn();
    else fail(ui.network_failed);
  });
  source.stream();
}

async function end() {
  if (busy || ended) return;
  setBusy(true);
  endButton.textContent = ui.ending;
  statusLine.textContent = "";
  try {
    const answer = await api(`${sessionUrl}/end`, { method: "POST", body: { reason: "user" } });
    setBusy(false);
    showClosing(answer.already_ended ? await endedReason() : "user", true);
  } catch (error) {
    setBusy(false);
    statusLine.textContent = error instanceof ApiError && error.status !== 500 && error.status !== 404
      ? errorText(error)
      : ui.end_failed;
  } finally {
    endButton.textContent = endButton.dataset.label;
  }
}

wireComposer(composer, input, () => !busy && !ended, send);
wireAutoPlay(byId("autoplay"), (text) => {
  statusLine.textContent = text;
});
wireVoiceInput(byId("mic"), input, (text) => {
  statusLine.textContent = text;
});

endButton.addEventListener("click", end);
watchFeedback(log);
load();
