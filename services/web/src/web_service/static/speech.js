// Spoken replies. Every AI line gets a play button; with auto-play on (a switch the browser
// remembers), a reply is spoken sentence by sentence while it streams in, so the first sentence
// plays soon after its text appears. Each sentence is one request to the TTS service, which
// speaks it with the character's own voice and caches it: playing a line again costs nothing.
import { lang, ui } from "/static/page.js";

const TTS_API = document.querySelector('meta[name="tts-api"]')?.content || "/api/v2/tts";
const AUTO_PLAY_KEY = "wp-autoplay";

// Japanese sentences end at 。！？ (with any closing bracket after them); English ones at . ! ?
// followed by a space; a line break ends one too. The streamed text and the finished one are
// split the same way, so both ask for the same audio (and the second finds it cached).
const JA_END = "。！？";
const EN_END = "!?.";
const CLOSERS = "」』）)\"'";

// The finished sentences of `text`, and what is left after them. While the text still grows
// (`final` false), a full stop at its very end may be a decimal point ("3." of "3.5"): it waits.
function split(text, final) {
  const done = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const after = text[i + 1];
    let end = -1;
    if (JA_END.includes(c)) {
      end = i + 1;
    } else if (EN_END.includes(c) && (after === undefined ? final : /\s/.test(after) || CLOSERS.includes(after))) {
      end = i + 1;
    } else if (c === "\n") {
      end = i + 1;
    }
    if (end < 0) continue;
    while (end < text.length && (JA_END + EN_END + CLOSERS).includes(text[end])) end += 1;
    const sentence = text.slice(start, end).trim();
    if (sentence) done.push(sentence);
    start = end;
    i = end - 1;
  }
  return { done, rest: text.slice(start).trim() };
}

export function sentences(text) {
  const { done, rest } = split(text, true);
  return rest ? [...done, rest] : done;
}

function completeSentences(partial) {
  return split(partial, false).done;
}

// The language a line is spoken in is the language it is written in (a learner may write English
// on a Japanese page, and the reply follows them): kana or kanji make it Japanese.
export function languageOf(text, fallback = lang) {
  if (/[\u3040-\u30ff\u3400-\u9fff]/.test(text)) return "ja";
  return /[A-Za-z]/.test(text) ? "en" : fallback;
}

export function speechUrl(text, characterId, language = lang) {
  const query = new URLSearchParams({ text, language: languageOf(text, language) });
  if (characterId) query.set("character_id", characterId);
  return `${TTS_API}/speech?${query}`;
}

// One audio element per page plays a queue of sentences, one after another.
class SpeechPlayer {
  constructor() {
    this.audio = document.createElement("audio");
    this.audio.id = "speech-player";
    this.audio.preload = "auto";
    this.audio.hidden = true;
    document.body.appendChild(this.audio);
    this.queue = [];
    this.owner = null;
    this.onProblem = () => {};
    this.audio.addEventListener("ended", () => this.next());
    this.audio.addEventListener("error", () => {
      this.onProblem(ui.speech_failed);
      this.next();
    });
  }

  enqueue(url, owner) {
    this.queue.push({ url, owner });
    if (this.audio.paused && !this.pending) this.next();
  }

  stop() {
    this.queue = [];
    this.audio.pause();
    this.mark(null);
  }

  mark(owner) {
    if (this.owner && this.owner !== owner) this.owner.classList.remove("speaking");
    this.owner = owner;
    if (owner) owner.classList.add("speaking");
  }

  next() {
    const item = this.queue.shift();
    if (!item) {
      this.mark(null);
      return;
    }
    this.mark(item.owner);
    this.audio.src = item.url;
    this.pending = true;
    this.audio
      .play()
      .catch((error) => {
        // The browser refused to play without a click (auto-play policy): say how to hear it.
        if (error && error.name === "NotAllowedError") {
          this.queue = [];
          this.mark(null);
          this.onProblem(ui.autoplay_blocked);
        }
      })
      .finally(() => {
        this.pending = false;
      });
  }
}

let shared = null;
export function player() {
  if (!shared) shared = new SpeechPlayer();
  return shared;
}

export function autoPlayOn() {
  try {
    return localStorage.getItem(AUTO_PLAY_KEY) === "1";
  } catch (_) {
    return false;
  }
}

// The auto-play switch (a checkbox): remembered in the browser; turning it off stops speech.
export function wireAutoPlay(checkbox, onProblem) {
  checkbox.checked = autoPlayOn();
  if (onProblem) player().onProblem = onProblem;
  checkbox.addEventListener("change", () => {
    try {
      localStorage.setItem(AUTO_PLAY_KEY, checkbox.checked ? "1" : "0");
    } catch (_) { /* private mode: the switch still works for this page */ }
    if (!checkbox.checked) player().stop();
  });
}

// Speak a whole line now (the play button), with the voice of `characterId`.
export function speak(text, characterId, owner, language = lang) {
  const p = player();
  p.stop();
  for (const sentence of sentences(text)) p.enqueue(speechUrl(sentence, characterId, language), owner);
}

// A play button on an AI line `li` (its text in `.body`).
export function addPlayButton(li, characterId, language = lang) {
  if (li.querySelector("button.play")) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "play";
  button.textContent = "▶";
  button.title = ui.play_label;
  button.setAttribute("aria-label", ui.play_label);
  button.addEventListener("click", () => speak(li.querySelector(".body").textContent, characterId, li, language));
  li.appendChild(button);
}

// A reply streaming in: with auto-play on, each sentence is spoken as soon as it is complete.
export class StreamingSpeech {
  constructor(owner, characterId, language = lang) {
    this.owner = owner;
    this.characterId = characterId;
    this.language = language;
    this.spoken = 0;
    this.on = autoPlayOn();
    if (this.on) player().stop();
  }

  queue(list) {
    for (const sentence of list.slice(this.spoken)) {
      player().enqueue(speechUrl(sentence, this.characterId, this.language), this.owner);
    }
    this.spoken = Math.max(this.spoken, list.length);
  }

  update(textSoFar) {
    if (this.on) this.queue(completeSentences(textSoFar));
  }

  finish(text) {
    if (this.on) this.queue(sentences(text));
  }
}
