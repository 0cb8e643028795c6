// What the progress pages (report, compare, journal, strengths) share: building elements with
// text only (never HTML from an answer), scores as five dots, dates, lengths, and where a
// session's transcript and report are.
import { format, lang, ui } from "/static/page.js";

// An element with a class and text (textContent: whatever the text holds stays text).
export function el(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== "" && text !== null && text !== undefined) node.textContent = String(text);
  return node;
}

export function link(href, text, className = "") {
  const a = el("a", className, text);
  a.href = href;
  return a;
}

// A 1-5 score as five dots, n of them filled; read out as "5段階中 4" (or "not scored").
export function dots(score, className = "") {
  const box = el("span", `dots ${className}`.trim());
  box.setAttribute("role", "img");
  const n = Number.isFinite(score) ? Math.max(0, Math.min(5, Math.round(score))) : 0;
  box.setAttribute("aria-label", Number.isFinite(score) ? format(ui.score_of_five, { n: score }) : ui.no_score);
  box.dataset.score = Number.isFinite(score) ? String(n) : "";
  for (let i = 1; i <= 5; i += 1) box.appendChild(el("span", i <= n ? "dot on" : "dot"));
  return box;
}

// A score as dots and its number ("4" or "4.3"), the number for sighted readers only.
export function scoreBadge(score, digits = 0) {
  const box = el("span", "score");
  box.appendChild(dots(score));
  const number = el("span", "score-number", Number.isFinite(score) ? score.toFixed(digits) : "—");
  number.setAttribute("aria-hidden", "true");
  box.appendChild(number);
  return box;
}

const LOCALE = lang === "en" ? "en-GB" : "ja-JP";
const DATE_TIME = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" });
const SHORT = new Intl.DateTimeFormat(LOCALE, { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" });

export function dateText(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "—" : DATE_TIME.format(date);
}

export function shortDateText(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : SHORT.format(date);
}

// A <time> element for an ISO timestamp, shown in the learner's time zone.
export function timeElement(iso) {
  const time = el("time", "", dateText(iso));
  if (iso) time.dateTime = iso;
  return time;
}

export function durationText(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return format(ui.duration_seconds, { s });
  return format(ui.duration_minutes, { m: Math.floor(s / 60), s: s % 60 });
}

export function turnsText(n) {
  return format(n === 1 ? ui.turns_count_one : ui.turns_count, { n });
}

export function kindText(sourceService) {
  return sourceService === "chat" ? ui.kind_chat : ui.kind_scenario;
}

// Where the conversation itself can be read again: the roleplay page or the free chat.
export function transcriptHref(sourceService, sessionId) {
  const id = encodeURIComponent(sessionId);
  return sourceService === "chat" ? `/?session=${id}` : `/roleplay/${id}`;
}

export function reportHref(sessionId) {
  return `/report/${encodeURIComponent(sessionId)}`;
}

export function briefingHref(scenarioId) {
  return `/scenarios/${encodeURIComponent(scenarioId)}`;
}

// A score change as an arrow and words: ↑ (up), ↓ (down), = (same), – (one side not scored);
// `digits` for an average's change (overall scores have one decimal).
export function change(delta, digits = 0) {
  const box = el("span", "change");
  let arrow;
  let words;
  if (delta === null || delta === undefined) {
    box.classList.add("change-none");
    arrow = "–";
    words = ui.change_none;
  } else if (Number(delta.toFixed(digits)) > 0) {
    box.classList.add("change-up");
    arrow = `↑${delta.toFixed(digits)}`;
    words = format(ui.change_up, { n: delta.toFixed(digits) });
  } else if (Number(delta.toFixed(digits)) < 0) {
    box.classList.add("change-down");
    arrow = `↓${(-delta).toFixed(digits)}`;
    words = format(ui.change_down, { n: (-delta).toFixed(digits) });
  } else {
    box.classList.add("change-same");
    arrow = "=";
    words = ui.change_same;
  }
  const mark = el("span", "change-arrow", arrow);
  mark.setAttribute("aria-hidden", "true");
  box.append(mark, el("span", "visually-hidden", words));
  box.title = words;
  return box;
}

// A status line that says what went wrong, with a button to try again.
export function showFailure(statusLine, message, retry) {
  statusLine.textContent = message;
  statusLine.classList.add("failed");
  statusLine.hidden = false;
  if (retry) {
    const button = el("button", "secondary retry-inline", ui.retry);
    button.type = "button";
    button.addEventListener("click", () => {
      statusLine.classList.remove("failed");
      retry();
    });
    statusLine.append(" ", button);
  }
}
