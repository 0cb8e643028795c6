// A watched dialogue: the turns so far (read back, so a reload shows them again), new turns as
// the watch service's workers produce them (SSE, resumed after the last turn seen), pause,
// pace and stop, the learner's own line (both characters take it up), each character's voice,
// and what to notice once it is over.
import { ApiError, api, ensureSignedIn, errorText, ui, wireComposer } from "/static/page.js";
import { StreamingSpeech, addPlayButton, wireAutoPlay } from "/static/speech.js";
import { wireVoiceInput } from "/static/voice_input.js";

const byId = (id) => document.getElementById(id);
const root = byId("watch");
const watchUrl = `${root.dataset.watchApi}/${encodeURIComponent(root.dataset.watchId)}`;

const loadStatus = byId("w-load-status");
const log = byId("log");
const controls = byId("w-controls");
const pauseButton = byId("w-pause");
const paceSelect = byId("w-pace");
const stopButton = byId("w-stop");
const composer = byId("composer");
const input = byId("message");
const sendButton = byId("send");
const statusLine = byId("status");
const closing = byId("closing");

let watch = null;
let speakers = new Map();
let lastIndex = -1;
let ended = false;
let paused = false;
let source = null;
let sending = false;
let reconnectDelay = 1000;
const say = (text) => {
  statusLine.textContent = text;
};

function speakerOf(turn) {
  return turn.intervention ? null : speakers.get(turn.speaker_id) || null;
}

function addTurn(turn, live) {
  if (turn.turn_index <= lastIndex) return;
  lastIndex = turn.turn_index;
  const speaker = speakerOf(turn);
  const li = document.createElement("li");
  li.className = `msg ${turn.intervention ? "user" : turn.speaker_id === "a" ? "model" : "model peer"}`;
  li.dataset.turnId = turn.turn_id;
  li.dataset.turnIndex = String(turn.turn_index);
  const name = document.createElement("span");
  name.className = "speaker";
  name.textContent = speaker ? speaker.display_name : ui.you;
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = turn.text;
  li.append(name, body);
  if (speaker) addPlayButton(li, speaker.character_id, watch.language);
  log.appendChild(li);
  li.scrollIntoView({ block: "end" });
  if (live && speaker) new StreamingSpeech(li, speaker.character_id, watch.language).finish(turn.text);
  if (!ended && !paused) say(ui.watch_waiting);
}

function showState(state) {
  paused = Boolean(state.paused);
  pauseButton.textContent = paused ? pauseButton.dataset.resume : pauseButton.dataset.pause;
  pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
  if (state.pace_seconds) paceSelect.value = String(Math.round(state.pace_seconds));
  if (!ended) say(paused ? ui.watch_paused : ui.watch_waiting);
}

function reasonText(reason) {
  return ui[`watch_ended_${reason}`] || ui.watch_ended_stopped;
}

function showEnded(reason, announce) {
  if (ended) return;
  ended = true;
  source?.close();
  root.classList.add("ended");
  controls.hidden = true;
  composer.hidden = true;
  byId("intervene-hint").hidden = true;
  say("");
  byId("closing-reason").textContent = reasonText(reason);
  if (watch.scenario_id) {
    const practise = byId("practise");
    practise.href = `/scenarios/${encodeURIComponent(watch.scenario_id)}`;
    practise.hidden = false;
  }
  closing.hidden = false;
  if (announce) closing.focus();
  loadNotes();
}

function fill(list, items, build) {
  list.replaceChildren(...items.map(build));
}

async function loadNotes() {
  const status = byId("notes-status");
  try {
    const notes = await api(`${watchUrl}/notes`);
    status.hidden = true;
    const summary = byId("notes-summary");
    summary.textContent = notes.summary;
    summary.hidden = !notes.summary;
    fill(byId("notes-list"), notes.notes, (note) => {
      const li = document.createElement("li");
      li.className = `note note-${note.kind}`;
      const phrase = document.createElement("q");
      phrase.textContent = note.phrase;
      const who = speakers.get(note.speaker_id);
      const by = document.createElement("span");
      by.className = "speaker";
      by.textContent = who ? who.display_name : ui.you;
      const why = document.createElement("p");
      why.textContent = note.why;
      li.append(by, phrase, why);
      return li;
    });
    if (notes.learning_points.length) {
      fill(byId("notes-points-list"), notes.learning_points, (text) => {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      });
      byId("notes-points").hidden = false;
    }
  } catch (_) {
    status.textContent = ui.notes_failed;
  }
}

function parse(data) {
  try {
    return JSON.parse(data) || {};
  } catch (_) {
    return {};
  }
}

// New turns as they come: the stream starts after the last turn shown, and starts again after
// the same point if it drops (the service sends what was missed).
async function connect() {
  if (ended) return;
  try {
    await ensureSignedIn();
  } catch (_) { /* the stream's own failure says it */ }
  source = new EventSource(`${watchUrl}/events?after=${lastIndex}`, { withCredentials: true });
  source.addEventListener("open", () => {
    reconnectDelay = 1000;
  });
  source.addEventListener("turn", (e) => addTurn(parse(e.data), true));
  source.addEventListener("state", (e) => showState(parse(e.data)));
  source.addEventListener("ended", (e) => showEnded(parse(e.data).reason, true));
  source.addEventListener("error", () => {
    source.close();
    if (ended) return;
    say(ui.watch_reconnecting);
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 15000);
  });
}

async function control(change) {
  pauseButton.disabled = true;
  try {
    showState(await api(`${watchUrl}/control`, { method: "POST", body: change }));
  } catch (error) {
    say(error instanceof ApiError && error.status === 409 ? ui.watch_ended_stopped : ui.watch_control_failed);
  } finally {
    pauseButton.disabled = false;
  }
}

async function stop() {
  stopButton.disabled = true;
  try {
    await api(`${watchUrl}/stop`, { method: "POST" });
    showEnded("stopped", true);
  } catch (error) {
    say(errorText(error));
  } finally {
    stopButton.disabled = false;
  }
}

async function intervene(message) {
  sending = true;
  sendButton.disabled = true;
  try {
    const turn = await api(`${watchUrl}/intervene`, { method: "POST", body: { message } });
    addTurn({ ...turn, text: message, intervention: true, speaker_id: "" }, false);
    say(ui.intervene_sent);
  } catch (error) {
    input.value = message;
    if (error instanceof ApiError && error.status === 409) showEnded("stopped", true);
    else say(error instanceof ApiError && (error.status === 400 || error.status === 422) ? ui.message_invalid : ui.intervene_failed);
  } finally {
    sending = false;
    sendButton.disabled = false;
  }
}

async function load() {
  try {
    watch = await api(watchUrl);
  } catch (error) {
    const gone = error instanceof ApiError && (error.status === 404 || error.status === 422);
    loadStatus.textContent = gone ? ui.watch_not_found : ui.watch_load_failed;
    loadStatus.classList.add("failed");
    return;
  }
  speakers = new Map(watch.speakers.map((s) => [s.id, s]));
  document.title = `${watch.title} | ${ui.watch_title}`;
  byId("w-title").textContent = watch.title;
  fill(byId("w-speakers"), watch.speakers, (s) => {
    const li = document.createElement("li");
    li.className = `speaker-${s.id}`;
    // The role only (the persona's first sentence; the rest is how the character behaves).
    const role = (s.persona || "").split(/[。.]\s*/)[0];
    li.textContent = role ? `${s.display_name}（${role}）` : s.display_name;
    return li;
  });
  byId("w-head").hidden = false;
  loadStatus.hidden = true;
  for (const turn of watch.turns) addTurn(turn, false);
  if (watch.status === "ended") {
    showEnded(watch.ended_reason, false);
    return;
  }
  controls.hidden = false;
  composer.hidden = false;
  byId("intervene-hint").hidden = false;
  showState({ paused: watch.status === "paused" || watch.paused, pace_seconds: watch.pace_seconds });
  connect();
}

pauseButton.addEventListener("click", () => control({ paused: !paused }));
paceSelect.addEventListener("change", () => control({ pace_seconds: Number(paceSelect.value) }));
stopButton.addEventListener("click", stop);
wireComposer(composer, input, () => !sending && !ended, intervene);
wireAutoPlay(byId("autoplay"), say);
wireVoiceInput(byId("mic"), input, say);
// Leaving the page closes the stream at once, so the dialogue stops for want of a viewer.
window.addEventListener("pagehide", () => source?.close());
load();
