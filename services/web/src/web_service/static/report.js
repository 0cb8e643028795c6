// The coaching report of one ended session. Feedback writes it a few seconds after the session
// ends: until then its API answers 404 and the page shows its progress, asking once a second
// and giving up (with a way to check again) after a minute. Then the overall score, summary,
// what went well and what to try next; each skill with its score, what the score means, the
// learner's own words as evidence, advice and a better phrasing; the scenario's criteria. Links:
// the transcript, the scenario again, the previous attempt compared, the journal; and print.
import { ApiError, api, format, lang, ui } from "/static/page.js";
import {
  briefingHref, dateText, dots, durationText, el, kindText, showFailure, timeElement, transcriptHref, turnsText,
} from "/static/progress.js";

const byId = (id) => document.getElementById(id);
const root = byId("report-page");
const feedbackApi = root.dataset.feedbackApi;
const sessionId = root.dataset.sessionId;
const reportUrl = `${feedbackApi}/sessions/${encodeURIComponent(sessionId)}/report`;

const WAIT_LIMIT_MS = 60_000;
const POLL_MS = 1_000;

const waiting = byId("report-wait");
const elapsedLine = byId("wait-elapsed");
const statusLine = byId("report-status");
const article = byId("report");

let reportLang = lang;
let started = 0; // when the page began waiting for the report
let announce = false; // the report arrived while the learner waited: focus moves to it

// Text written by feedback is in the report's language (the session's), which may not be the page's.
function said(node) {
  if (reportLang !== lang) node.lang = reportLang;
  return node;
}

function fillPoints(list, items) {
  list.replaceChildren(...items.map((text) => said(el("li", "", text))));
}

function quote(text) {
  return said(el("q", "learner-quote", text));
}

// The learner's turns behind a score: + or −, their words, what in them counted, which turn.
function evidenceList(items, skipCue = "") {
  const list = el("ul", "evidence");
  for (const e of items) {
    const li = el("li", `evidence-item ${e.positive ? "positive" : "negative"}`);
    const sign = el("span", "sign", e.positive ? "+" : "−");
    sign.setAttribute("aria-hidden", "true");
    li.append(sign, el("span", "visually-hidden", `${e.positive ? ui.evidence_plus : ui.evidence_minus}: `));
    const body = el("span", "evidence-body");
    body.appendChild(quote(e.quote));
    if (e.cue && e.cue !== skipCue) body.appendChild(said(el("span", "cue", e.cue)));
    body.appendChild(el("span", "turn-ref", format(ui.turn_n, { n: e.turn_index + 1 })));
    li.appendChild(body);
    list.appendChild(li);
  }
  return list;
}

function betterPhrasing(text) {
  const p = el("p", "better");
  p.appendChild(el("strong", "", ui.try_this));
  const q = said(el("q", "better-phrasing", text));
  q.lang = reportLang;
  p.appendChild(q);
  return p;
}

function skillCard(skill) {
  const li = el("li", "skill-card");
  li.dataset.skill = skill.id;
  const head = el("header", "skill-head");
  head.append(said(el("h4", "", skill.label)), dots(skill.score, "skill-dots"));
  const number = el("span", "score-number", `${skill.score} / 5`);
  number.setAttribute("aria-hidden", "true");
  head.appendChild(number);
  li.appendChild(head);
  li.appendChild(said(el("p", "skill-meaning", skill.meaning)));
  const evidence = el("div", "evidence-part");
  evidence.appendChild(el("p", "evidence-heading", ui.evidence_heading));
  evidence.appendChild(skill.evidence.length ? evidenceList(skill.evidence) : el("p", "evidence-none", ui.evidence_none));
  li.appendChild(evidence);
  if (skill.advice) {
    const p = el("p", "advice");
    p.append(el("strong", "", ui.advice_label), said(el("span", "", skill.advice)));
    li.appendChild(p);
  }
  if (skill.better_phrasing) li.appendChild(betterPhrasing(skill.better_phrasing));
  return li;
}

function criterionCard(criterion) {
  const li = el("li", `skill-card criterion status-${criterion.status}`);
  li.dataset.criterion = criterion.id;
  const head = el("header", "skill-head");
  head.append(said(el("h4", "", criterion.text)), said(el("span", "badge status-badge", criterion.status_label)));
  li.appendChild(head);
  if (criterion.evidence.length) {
    const evidence = el("div", "evidence-part");
    evidence.appendChild(el("p", "evidence-heading", ui.evidence_heading));
    evidence.appendChild(evidenceList(criterion.evidence, criterion.status_label));
    li.appendChild(evidence);
  }
  if (criterion.better_phrasing) li.appendChild(betterPhrasing(criterion.better_phrasing));
  return li;
}

function show(report, attempts) {
  reportLang = report.language === "en" ? "en" : "ja";
  const isChat = report.source_service === "chat";
  byId("r-kind").textContent = kindText(report.source_service);
  byId("r-title").textContent = isChat ? ui.kind_chat : attempts.title || report.title || report.scenario_id;
  byId("r-date").replaceChildren(timeElement(report.ended_at));
  byId("r-turns").textContent = turnsText(report.turn_count);
  if (report.started_at) {
    const seconds = (new Date(report.ended_at) - new Date(report.started_at)) / 1000;
    byId("r-duration").textContent = `${ui.col_duration} ${durationText(seconds)}`;
  }
  byId("r-overall").textContent = report.overall.toFixed(1);
  byId("r-overall-dots").replaceChildren(dots(Math.round(report.overall), "overall-dots"));
  byId("r-overall-dots").firstChild.setAttribute("aria-label", format(ui.score_of_five, { n: report.overall.toFixed(1) }));
  said(byId("r-summary")).textContent = report.summary;

  fillPoints(byId("r-strengths"), report.strengths);
  byId("r-strengths-none").hidden = report.strengths.length > 0;
  fillPoints(byId("r-try-next"), report.try_next);
  byId("r-skills").replaceChildren(...report.skills.map(skillCard));
  if (report.criteria.length) {
    byId("r-criteria").replaceChildren(...report.criteria.map(criterionCard));
    byId("r-criteria-part").hidden = false;
  }

  byId("r-transcript").href = transcriptHref(report.source_service, report.session_id);
  const again = byId("r-again");
  if (isChat) {
    again.href = "/";
    again.textContent = ui.new_chat_link;
  } else {
    again.href = briefingHref(report.scenario_id);
  }

  waiting.hidden = true;
  waiting.removeAttribute("aria-busy");
  statusLine.hidden = true;
  article.hidden = false;
  document.title = `${byId("r-title").textContent} | ${ui.report_title}`;
  if (announce) byId("r-title").focus({ preventScroll: true });
  if (attempts.previous) {
    const compare = byId("r-compare");
    const params = new URLSearchParams({ before: attempts.previous.session_id, after: report.session_id });
    compare.href = `/compare?${params}`;
    compare.title = dateText(attempts.previous.ended_at);
    compare.hidden = false;
  }
}

// The practice's title (in the page's language) and the attempt at the same scenario just
// before this one, from the journal: with one, the report links to the two compared.
async function attemptsOf(report) {
  if (report.source_service === "chat" || !report.scenario_id) return {};
  const query = new URLSearchParams({ lang, limit: "500", scenario_id: report.scenario_id });
  let journal;
  try {
    journal = await api(`${feedbackApi}/journal?${query}`);
  } catch (_) {
    return {}; // the report stands without its title and the link
  }
  const ended = new Date(report.ended_at).getTime();
  return {
    title: journal.entries.find((e) => e.session_id === report.session_id)?.title || "",
    // Newest first: the first one that ended earlier.
    previous: journal.entries.find((e) => e.session_id !== report.session_id && new Date(e.ended_at).getTime() < ended),
  };
}

function showElapsed() {
  const seconds = Math.floor((Date.now() - started) / 1000);
  elapsedLine.textContent = seconds >= 2 ? format(ui.report_waited, { n: seconds }) : "";
}

function giveUp(message) {
  waiting.hidden = true;
  waiting.removeAttribute("aria-busy");
  statusLine.replaceChildren();
  showFailure(statusLine, message, () => {
    byId("report-gave-up-links").hidden = true;
    startWaiting();
  });
  byId("report-gave-up-links").hidden = false;
}

async function poll() {
  try {
    const report = await api(reportUrl);
    show(report, await attemptsOf(report));
    return;
  } catch (error) {
    const notYet = error instanceof ApiError && [404, 429, 502, 503, 504].includes(error.status);
    const offline = !(error instanceof ApiError);
    if (!notYet && !offline) {
      giveUp(ui.progress_failed);
      return;
    }
  }
  announce = true;
  showElapsed();
  if (Date.now() - started >= WAIT_LIMIT_MS) {
    giveUp(ui.report_gave_up);
    return;
  }
  setTimeout(poll, POLL_MS);
}

function startWaiting() {
  started = Date.now();
  statusLine.hidden = true;
  elapsedLine.textContent = "";
  waiting.hidden = false;
  waiting.setAttribute("aria-busy", "true");
  poll();
}

byId("print").addEventListener("click", () => window.print());
startWaiting();
