// Watch mode's start page: pick a scenario (grouped by category) or type a topic, pick the pace,
// and the dialogue starts on its own page. Scenarios that ask for the learner's consent (the gray
// zones) are practised as a roleplay only, so the picker leaves them out.
import { ApiError, api, errorText, lang, ui } from "/static/page.js";

const byId = (id) => document.getElementById(id);
const root = byId("watch-start");
const watchApi = root.dataset.watchApi;
const scenarioApi = root.dataset.scenarioApi;
const form = byId("watch-form");
const scenarioSelect = byId("w-scenario");
const topic = byId("w-topic");
const pace = byId("w-pace");
const start = byId("w-start");
const statusLine = byId("w-status");

let scenarios = new Map();

async function loadCatalogue() {
  try {
    const catalogue = await api(`${scenarioApi}/scenarios?language=${lang}&page_size=100`);
    const watchable = catalogue.scenarios.filter((s) => !s.consent);
    scenarios = new Map(watchable.map((s) => [s.id, s]));
    const empty = document.createElement("option");
    empty.value = "";
    empty.textContent = "—";
    const groups = catalogue.categories.map((category) => {
      const group = document.createElement("optgroup");
      group.label = category.name;
      for (const s of watchable.filter((x) => x.category === category.id)) {
        const option = document.createElement("option");
        option.value = s.id;
        option.textContent = s.title;
        group.appendChild(option);
      }
      return group;
    });
    scenarioSelect.replaceChildren(empty, ...groups.filter((g) => g.children.length));
    scenarioSelect.disabled = false;
    const wanted = root.dataset.scenarioId;
    if (wanted && scenarios.has(wanted)) scenarioSelect.value = wanted;
  } catch (error) {
    scenarioSelect.replaceChildren(new Option(errorText(error), ""));
  }
}

function chosenScenario() {
  return topic.value.trim() ? null : scenarios.get(scenarioSelect.value) || null;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = topic.value.trim();
  const scenario = chosenScenario();
  if (!text && !scenario) {
    statusLine.textContent = ui.watch_need_choice;
    return;
  }
  start.disabled = true;
  statusLine.textContent = ui.watch_starting;
  try {
    const watch = await api(watchApi, {
      method: "POST",
      body: {
        scenario_id: text ? null : scenario.id,
        topic: text || null,
        language: lang,
        pace_seconds: Number(pace.value),
      },
    });
    window.location.assign(`/watch/${encodeURIComponent(watch.watch_id)}`);
  } catch (error) {
    start.disabled = false;
    if (error instanceof ApiError && error.status === 404 && text) statusLine.textContent = ui.watch_topic_unknown;
    else if (error instanceof ApiError && (error.status === 400 || error.status === 422)) statusLine.textContent = ui.watch_need_choice;
    else statusLine.textContent = error instanceof ApiError && error.status >= 500 ? ui.watch_start_failed : errorText(error);
  }
});

loadCatalogue();
