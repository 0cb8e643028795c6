// Strengths over time: each skill's score in every scored session as a line chart (Chart.js,
// vendored), the strongest skills, and the weakest with its advice and three scenarios that
// practise it (the scenario search, with the query feedback suggests). A new learner is pointed
// to the scenarios instead.
import { ApiError, api, errorText, format, lang, ui } from "/static/page.js";
import { briefingHref, dots, el, link, shortDateText, showFailure } from "/static/progress.js";

const byId = (id) => document.getElementById(id);
const root = byId("strengths-page");
const feedbackApi = root.dataset.feedbackApi;
const scenarioApi = root.dataset.scenarioApi;
const statusLine = byId("strengths-status");

// One colour and one point shape per skill: the lines differ in more than colour.
const COLOURS = ["#2f6fde", "#d9534f", "#2e9d5b", "#c9861a", "#8c4fd6", "#1c8a9c"];
const SHAPES = ["circle", "rect", "triangle", "rectRot", "star", "crossRot"];

let chart = null;

function drawChart(skills, sessionCount) {
  // The sessions, oldest first, from every skill's points; a skill a session did not score is a gap.
  const sessions = new Map();
  for (const skill of skills) for (const p of skill.points) sessions.set(p.session_id, p.ended_at);
  const order = [...sessions.entries()].sort((a, b) => new Date(a[1]) - new Date(b[1]));
  // Two lines under each point: which session it was, and when.
  const labels = order.map(([, endedAt], i) => [format(ui.session_n, { n: i + 1 }), shortDateText(endedAt)]);
  const datasets = skills.map((skill, i) => {
    const scores = new Map(skill.points.map((p) => [p.session_id, p.score]));
    return {
      label: skill.label,
      data: order.map(([id]) => (scores.has(id) ? scores.get(id) : null)),
      borderColor: COLOURS[i % COLOURS.length],
      backgroundColor: COLOURS[i % COLOURS.length],
      pointStyle: SHAPES[i % SHAPES.length],
      pointRadius: 5,
      clip: 10, // points on 1 and 5 are drawn whole
      pointHoverRadius: 7,
      borderWidth: 2,
      spanGaps: true,
      tension: 0.15,
    };
  });
  const canvas = byId("skills-chart");
  canvas.setAttribute("aria-label", format(ui.chart_label, { n: sessionCount }));
  const Chart = window.Chart;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#1d2733";
  const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  if (chart) chart.destroy();
  chart = new Chart(canvas, {
    type: "line",
    data: { labels, datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: still ? false : { duration: 500 },
      layout: { padding: { top: 8, right: 8 } },
      interaction: { mode: "index", intersect: false },
      scales: {
        y: { min: 1, max: 5, ticks: { stepSize: 1 } },
        x: { ticks: { maxRotation: 0, autoSkip: true } },
      },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true, boxWidth: 9, boxHeight: 9, padding: 12 } },
      },
    },
  });
}

function skillLine(skill) {
  const li = el("li", "skill-line");
  li.dataset.skill = skill.id;
  li.appendChild(el("span", "skill-line-label", skill.label));
  // The dots are the average (skills are ordered by it); the numbers say it and the latest score.
  const average = dots(Math.round(skill.average));
  average.setAttribute("aria-hidden", "true");
  li.appendChild(average);
  li.appendChild(el("span", "skill-line-numbers", format(ui.average_latest, { avg: skill.average.toFixed(1), latest: skill.latest })));
  return li;
}

function suggestionCard(scenario) {
  const li = el("li", "suggestion");
  li.dataset.scenarioId = scenario.id;
  const title = el("p", "suggestion-title");
  title.appendChild(link(briefingHref(scenario.id), scenario.title, "card-link"));
  li.appendChild(title);
  const meta = el("p", "card-meta");
  const level = el("span", `badge difficulty-badge difficulty-${scenario.difficulty}`, ui[`difficulty_${scenario.difficulty}`] || scenario.difficulty);
  meta.append(level, el("span", "", format(ui.minutes, { n: scenario.estimated_minutes })));
  li.appendChild(meta);
  li.appendChild(el("p", "card-desc", scenario.description));
  return li;
}

async function suggest(query, recent) {
  const status = byId("s-suggested-status");
  const list = byId("s-suggested");
  if (!query) {
    byId("suggested-heading").hidden = true;
    return;
  }
  status.textContent = ui.catalogue_loading;
  try {
    // A few more than shown, so that the scenarios just practised can be left out.
    const params = new URLSearchParams({ q: query, limit: String(3 + recent.length), lang });
    const matches = (await api(`${scenarioApi}/search?${params}`)).filter((m) => !recent.includes(m.scenario.id));
    list.replaceChildren(...matches.slice(0, 3).map((m) => suggestionCard(m.scenario)));
    status.textContent = "";
  } catch (_) {
    status.textContent = ui.suggested_failed;
    list.replaceChildren();
    const back = link("/scenarios", ui.start_scenarios);
    status.append(" ", back);
  }
}

function show(found) {
  const byIdOf = new Map(found.skills.map((s) => [s.id, s]));
  byId("s-count").textContent = format(ui.sessions_so_far, { n: found.session_count });

  const top = found.top.map((id) => byIdOf.get(id)).filter(Boolean);
  byId("s-top").replaceChildren(...top.map(skillLine));
  byId("s-top-none").hidden = top.length > 0;

  const weakest = byIdOf.get(found.weakest);
  if (weakest) {
    byId("s-weakest").textContent = weakest.label;
    byId("s-weakest-score").replaceChildren(dots(Math.round(weakest.average)));
    byId("s-weakest-score").firstChild.setAttribute("aria-label", format(ui.average_latest, { avg: weakest.average.toFixed(1), latest: weakest.latest }));
  }
  byId("s-advice").textContent = found.advice;
  byId("s-skills").replaceChildren(...found.skills.map(skillLine));

  statusLine.hidden = true;
  byId("strengths").hidden = false;
  drawChart(found.skills, found.session_count);
  suggest(found.practice_query, found.recent_scenario_ids || []);
}

async function load() {
  statusLine.hidden = false;
  statusLine.classList.remove("failed");
  statusLine.textContent = ui.strengths_loading;
  try {
    const found = await api(`${feedbackApi}/strengths?lang=${lang}`);
    if (!found.session_count || !found.skills.length) {
      statusLine.hidden = true;
      byId("strengths-empty").hidden = false;
      return;
    }
    show(found);
  } catch (error) {
    statusLine.replaceChildren();
    showFailure(statusLine, error instanceof ApiError && error.status !== 500 ? errorText(error) : ui.progress_failed, load);
  }
}

load();
