// The practice journal: every ended session of the learner, newest first, PAGE_SIZE to a page
// (?page= in the address, so a reload or the language link keeps it): when, what was practised
// (free chat or a scenario), how long, how many turns and the overall score; each opens its
// report and its transcript, and a scenario's attempt its comparison with the one before it.
// The whole journal downloads as CSV.
import { ApiError, api, ensureSignedIn, errorText, format, lang, setQuery, ui } from "/static/page.js";
import {
  durationText, el, kindText, link, reportHref, scoreBadge, showFailure, timeElement, transcriptHref, turnsText,
} from "/static/progress.js";

const PAGE_SIZE = 20;
const byId = (id) => document.getElementById(id);
const root = byId("journal-page");
const feedbackApi = root.dataset.feedbackApi;
const statusLine = byId("journal-status");
const list = byId("journal-list");
const part = byId("journal");
const newer = byId("newer");
const older = byId("older");
const csv = byId("csv");

let page = Math.max(1, Number.parseInt(new URLSearchParams(window.location.search).get("page"), 10) || 1);
let generation = 0;

// A value with its column's name: for screen readers, and shown on a phone, where the column
// heads are not (`shown`; otherwise the value says what it is, as a date or "2 turns" do).
function labelled(className, label, shown, ...content) {
  const box = el("span", className);
  box.appendChild(el("span", shown ? "cell-label" : "visually-hidden", shown ? label : `${label}: `));
  box.append(...content);
  return box;
}

function entryRow(entry, previous) {
  const li = el("li", "je-row");
  li.dataset.sessionId = entry.session_id;
  li.appendChild(labelled("je-date", ui.col_date, false, timeElement(entry.ended_at)));
  const practice = el("span", "je-practice");
  practice.appendChild(el("span", "je-title", entry.title));
  const kind = el("span", `badge kind-badge kind-${entry.source_service}`, kindText(entry.source_service));
  practice.append(" ", kind);
  li.appendChild(practice);
  li.appendChild(labelled("je-duration", ui.col_duration, true, durationText(entry.duration_s)));
  li.appendChild(labelled("je-turns", ui.col_turns, false, turnsText(entry.turn_count)));
  li.appendChild(labelled("je-overall", ui.col_overall, true, scoreBadge(entry.overall, 1)));
  const links = el("span", "je-links");
  links.appendChild(link(reportHref(entry.session_id), ui.open_report, "je-report"));
  links.appendChild(link(transcriptHref(entry.source_service, entry.session_id), ui.open_transcript, "je-transcript"));
  if (previous) {
    const params = new URLSearchParams({ before: previous.session_id, after: entry.session_id });
    links.appendChild(link(`/compare?${params}`, ui.compare_previous, "je-compare"));
  }
  li.appendChild(links);
  return li;
}

async function load() {
  const mine = ++generation;
  setQuery({ page: page > 1 ? String(page) : "" });
  statusLine.classList.remove("failed");
  statusLine.textContent = ui.journal_loading;
  list.setAttribute("aria-busy", "true");
  try {
    const query = new URLSearchParams({ lang, limit: String(PAGE_SIZE), offset: String((page - 1) * PAGE_SIZE) });
    const journal = await api(`${feedbackApi}/journal?${query}`);
    if (mine !== generation) return;
    if (!journal.entries.length && page > 1 && journal.total > 0) {
      // An address past the last page (the journal got shorter): the last page instead.
      page = Math.ceil(journal.total / PAGE_SIZE);
      load();
      return;
    }
    if (!journal.total) {
      statusLine.hidden = true;
      part.hidden = true;
      csv.hidden = true;
      byId("journal-empty").hidden = false;
      return;
    }
    const entries = journal.entries;
    list.replaceChildren(
      ...entries.map((entry, i) => {
        // The same scenario's attempt just before this one, when it is on this page too.
        const previous = entry.source_service === "scenario" && entry.scenario_id
          ? entries.slice(i + 1).find((e) => e.scenario_id === entry.scenario_id)
          : undefined;
        return entryRow(entry, previous);
      }),
    );
    const from = (page - 1) * PAGE_SIZE + 1;
    statusLine.textContent = format(ui.journal_range, { total: journal.total, from, to: from + entries.length - 1 });
    newer.hidden = page <= 1;
    older.hidden = from + entries.length - 1 >= journal.total;
    byId("pager").hidden = newer.hidden && older.hidden;
    part.hidden = false;
    csv.hidden = false;
  } catch (error) {
    if (mine !== generation) return;
    statusLine.replaceChildren();
    showFailure(statusLine, error instanceof ApiError && error.status !== 500 ? errorText(error) : ui.progress_failed, load);
  } finally {
    if (mine === generation) list.removeAttribute("aria-busy");
  }
}

function turnPage(step) {
  page = Math.max(1, page + step);
  // The button pressed may be gone on the new page: the keyboard carries on from its first row.
  load().then(() => {
    const first = list.querySelector("a");
    if (first) first.focus({ preventScroll: true });
    statusLine.scrollIntoView({ block: "nearest" });
  });
}

newer.addEventListener("click", () => turnPage(-1));
older.addEventListener("click", () => turnPage(1));

// The CSV is fetched by the browser itself (a download, the sign-in cookie going along): make
// sure the sign-in is fresh first, then let the link do its work.
let csvSignedIn = false;
csv.addEventListener("click", async (e) => {
  if (csvSignedIn) {
    csvSignedIn = false;
    return;
  }
  e.preventDefault();
  try {
    await ensureSignedIn();
  } catch (_) { /* the download then answers for itself */ }
  csvSignedIn = true;
  csv.click();
});

load();
