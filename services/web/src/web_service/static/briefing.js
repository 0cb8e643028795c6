// A scenario's briefing: what the situation is, who the learner plays and whom they talk to,
// the goal, what a good response does and what there is to learn; then the start button. A
// scenario with a consent notice starts only once the learner has ticked the box (its
// consent_given goes with the start). Starting makes the session and opens the roleplay page.
import { ApiError, api, errorText, format, lang, ui } from "/static/page.js";

const root = document.getElementById("briefing-page");
const scenarioApi = root.dataset.scenarioApi;
const scenarioId = root.dataset.scenarioId;
const statusLine = document.getElementById("briefing-status");
const briefing = document.getElementById("briefing");
const consentPart = document.getElementById("consent");
const consentBox = document.getElementById("consent-given");
const startButton = document.getElementById("start");
const startHint = document.getElementById("start-hint");
const startError = document.getElementById("start-error");

let needsConsent = false;

const byId = (id) => document.getElementById(id);

function fillList(list, items) {
  list.replaceChildren(
    ...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
}

function show(scenario, categories) {
  document.title = `${scenario.title} | ${ui.scenarios_title}`;
  byId("briefing-title").textContent = scenario.title;
  const level = byId("b-difficulty");
  level.textContent = ui[`difficulty_${scenario.difficulty}`] || scenario.difficulty;
  level.classList.add(`difficulty-${scenario.difficulty}`);
  byId("b-category").textContent = categories.find((c) => c.id === scenario.category)?.name || "";
  byId("b-minutes").textContent = format(ui.minutes, { n: scenario.estimated_minutes });
  byId("b-turns").textContent = format(ui.turns_limit, { n: scenario.max_turns });
  byId("b-description").textContent = scenario.description;
  byId("b-situation").textContent = scenario.situation;
  byId("b-role").textContent = scenario.learner_role;
  byId("b-character").textContent = scenario.character.full_name;
  byId("b-character-role").textContent = scenario.character.role;
  byId("b-goal").textContent = scenario.goal;
  fillList(byId("b-criteria"), scenario.criteria.map((c) => c.text));
  fillList(byId("b-learning"), scenario.learning_points);

  needsConsent = Boolean(scenario.consent);
  if (needsConsent) {
    byId("consent-notice").textContent = scenario.consent.notice;
    byId("consent-help").textContent = scenario.consent.help;
    consentPart.hidden = false;
    byId("watch-model").hidden = true; // a gray zone is practised, not watched
  }
  updateStart();
  statusLine.hidden = true;
  briefing.hidden = false;
}

function updateStart() {
  const waiting = needsConsent && !consentBox.checked;
  startButton.disabled = waiting;
  startHint.hidden = !waiting;
}

async function load() {
  try {
    const [scenario, catalogue] = await Promise.all([
      api(`${scenarioApi}/scenarios/${encodeURIComponent(scenarioId)}?lang=${lang}`),
      // Only for the category's name: the briefing does without it.
      api(`${scenarioApi}/scenarios?lang=${lang}&page_size=1`).catch(() => ({ categories: [] })),
    ]);
    show(scenario, catalogue.categories);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 422)) {
      statusLine.textContent = ui.scenario_not_found;
    } else {
      statusLine.textContent = error instanceof ApiError && error.status !== 500 ? errorText(error) : ui.catalogue_failed;
    }
    statusLine.classList.add("failed");
  }
}

async function start() {
  if (needsConsent && !consentBox.checked) return;
  startButton.disabled = true;
  startButton.textContent = ui.starting;
  startError.hidden = true;
  try {
    const session = await api(`${scenarioApi}/sessions`, {
      method: "POST",
      body: { scenario_id: scenarioId, language: lang, consent_given: needsConsent && consentBox.checked },
    });
    window.location.assign(`/roleplay/${encodeURIComponent(session.session_id)}`);
    return;
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.body.field === "consent_given") {
      startError.textContent = ui.consent_needed;
    } else if (error instanceof ApiError && [429, 502, 503, 504].includes(error.status)) {
      startError.textContent = errorText(error);
    } else {
      startError.textContent = ui.start_failed;
    }
    startError.hidden = false;
  }
  startButton.textContent = startButton.dataset.label;
  updateStart();
}

consentBox.addEventListener("change", updateStart);
startButton.addEventListener("click", start);
load();
