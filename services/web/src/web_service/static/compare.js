// Two attempts side by side (?before=&after=, two session ids): each attempt's date and overall
// score, then per skill and per scenario criterion both scores and the change (↑ ↓ =).
import { ApiError, api, format, lang, ui } from "/static/page.js";
import {
  briefingHref, change, el, reportHref, scoreBadge, shortDateText, showFailure, timeElement,
} from "/static/progress.js";

const byId = (id) => document.getElementById(id);
const root = byId("compare-page");
const feedbackApi = root.dataset.feedbackApi;
const scenarioApi = root.dataset.scenarioApi;
const before = root.dataset.before;
const after = root.dataset.after;
const statusLine = byId("compare-status");

// A practice's title in the page's language: a scenario's from the catalogue, or "free chat".
async function titleOf(report) {
  if (report.source_service === "chat" || !report.scenario_id) return ui.kind_chat;
  try {
    return (await api(`${scenarioApi}/scenarios/${encodeURIComponent(report.scenario_id)}?lang=${lang}`)).title;
  } catch (_) {
    return report.scenario_id;
  }
}

function cell(side, score, status) {
  const box = el("span", `cmp-cell ${side}`);
  box.appendChild(el("span", "visually-hidden", `${side === "before" ? ui.before_label : ui.after_label}: `));
  box.appendChild(scoreBadge(Number.isFinite(score) ? score : NaN));
  if (status) box.appendChild(el("span", "cmp-status", status));
  return box;
}

// One row: the item, both scores (with a criterion's status in each attempt) and the change.
function row(item, statuses) {
  const li = el("li", "cmp-row");
  li.dataset.item = item.id;
  li.appendChild(el("span", "cmp-label", item.label));
  li.appendChild(cell("before", item.before, statuses?.before.get(item.id)));
  li.appendChild(cell("after", item.after, statuses?.after.get(item.id)));
  const delta = el("span", "cmp-cell cmp-delta");
  delta.appendChild(change(item.delta));
  li.appendChild(delta);
  return li;
}

function attempt(side, report, title, showTitle) {
  byId(`c-${side}-date`).replaceChildren(timeElement(report.ended_at));
  const titleLine = byId(`c-${side}-title`);
  titleLine.textContent = title;
  titleLine.hidden = !showTitle;
  byId(`c-${side}-overall`).replaceChildren(scoreBadge(report.overall, 1));
  byId(`c-${side}-report`).href = reportHref(report.session_id);
  for (const slot of document.querySelectorAll(`[data-date-of="${side}"]`)) slot.textContent = shortDateText(report.ended_at);
}

function show(found, titles) {
  const [beforeTitle, afterTitle] = titles;
  const differ = beforeTitle !== afterTitle;
  byId("c-title").textContent = differ ? `${beforeTitle} → ${afterTitle}` : afterTitle;
  document.title = `${byId("c-title").textContent} | ${ui.compare_title}`;
  attempt("before", found.before, beforeTitle, differ);
  attempt("after", found.after, afterTitle, differ);
  byId("c-overall-change").replaceChildren(change(found.after.overall - found.before.overall, 1));

  byId("c-skills").replaceChildren(...found.skills.map((s) => row(s)));
  if (found.criteria.length) {
    const statuses = {
      before: new Map(found.before.criteria.map((c) => [c.id, c.status_label])),
      after: new Map(found.after.criteria.map((c) => [c.id, c.status_label])),
    };
    byId("c-criteria").replaceChildren(...found.criteria.map((c) => row(c, statuses)));
    byId("c-criteria-part").hidden = false;
  }

  const all = [...found.skills, ...found.criteria].filter((c) => c.delta !== null && c.delta !== undefined);
  byId("c-summary").textContent = format(ui.compare_summary, {
    up: all.filter((c) => c.delta > 0).length,
    down: all.filter((c) => c.delta < 0).length,
    same: all.filter((c) => c.delta === 0).length,
  });
  if (found.after.source_service !== "chat" && found.after.scenario_id) {
    const again = byId("c-again");
    again.href = briefingHref(found.after.scenario_id);
    again.hidden = false;
  }
  statusLine.hidden = true;
  byId("compare").hidden = false;
}

async function load() {
  if (!before || !after) {
    statusLine.textContent = ui.compare_missing;
    byId("compare-links").hidden = false;
    return;
  }
  statusLine.textContent = ui.compare_loading;
  try {
    const query = new URLSearchParams({ before, after, lang });
    const found = await api(`${feedbackApi}/compare?${query}`);
    show(found, await Promise.all([titleOf(found.before), titleOf(found.after)]));
  } catch (error) {
    statusLine.replaceChildren();
    if (error instanceof ApiError && [400, 404, 422].includes(error.status)) {
      showFailure(statusLine, ui.compare_not_found);
    } else {
      showFailure(statusLine, ui.progress_failed, load);
    }
    byId("compare-links").hidden = false;
  }
}

load();
