// Scenario catalogue: category chips with their counts, a difficulty filter and a search by
// meaning, all read from the scenario service through the gateway without reloading the page.
// The filters and the search are kept in the address (?category=&difficulty=&q=), so a reload,
// the language link or a shared link shows the same list.
import { ApiError, api, errorText, format, lang, setQuery, ui } from "/static/page.js";

const root = document.getElementById("catalogue");
const scenarioApi = root.dataset.scenarioApi;
const chips = document.getElementById("categories");
const difficulty = document.getElementById("difficulty");
const searchForm = document.getElementById("search");
const searchInput = document.getElementById("search-input");
const list = document.getElementById("scenario-list");
const statusLine = document.getElementById("results-status");
const clearButton = document.getElementById("clear-search");
const retryButton = document.getElementById("retry");
const cardTemplate = document.getElementById("card-template");

const DIFFICULTIES = new Set([...difficulty.options].map((o) => o.value));
const asked = new URLSearchParams(window.location.search);
const state = {
  category: asked.get("category") || "",
  difficulty: DIFFICULTIES.has(asked.get("difficulty")) ? asked.get("difficulty") : "",
  q: (asked.get("q") || "").trim(),
};
difficulty.value = state.difficulty;
searchInput.value = state.q;

let categories = []; // {id, name, description, needs_consent, scenario_count}, the catalogue's order
let generation = 0; // the latest load: an older answer arriving late is dropped

function queryString(values) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value !== "" && value !== undefined) query.set(name, value);
  return query.toString();
}

// Every scenario under the filters (the service pages them; with `countsOnly` just the first),
// and the categories with their counts under the other filters.
async function readCatalogue(countsOnly = false) {
  const scenarios = [];
  let token = "";
  let page;
  do {
    page = await api(`${scenarioApi}/scenarios?${queryString({
      lang, category: state.category, difficulty: state.difficulty, page_size: countsOnly ? 1 : 100, page_token: token,
    })}`);
    scenarios.push(...page.scenarios);
    token = countsOnly ? "" : page.next_page_token;
  } while (token);
  return { scenarios, categories: page.categories };
}

function categoryName(id) {
  return categories.find((c) => c.id === id)?.name || id;
}

function chip(id, name, count, description) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "chip";
  button.dataset.category = id;
  button.setAttribute("aria-pressed", String(state.category === id));
  if (description) button.title = description;
  const label = document.createElement("span");
  label.textContent = name;
  const counter = document.createElement("span");
  counter.className = "chip-count";
  counter.textContent = String(count);
  button.append(label, counter);
  return button;
}

// "All" and each category that has scenarios under the difficulty chosen (the chosen one always).
function renderChips() {
  const focused = document.activeElement?.closest?.(".chip")?.dataset.category;
  const total = categories.reduce((sum, c) => sum + c.scenario_count, 0);
  const buttons = [chip("", ui.filter_all, total, "")];
  for (const c of categories) {
    if (c.scenario_count > 0 || c.id === state.category) buttons.push(chip(c.id, c.name, c.scenario_count, c.description));
  }
  chips.replaceChildren(...buttons);
  if (focused !== undefined) chips.querySelector(`[data-category="${CSS.escape(focused)}"]`)?.focus();
}

function card(scenario) {
  const li = cardTemplate.content.firstElementChild.cloneNode(true);
  li.dataset.scenarioId = scenario.id;
  const link = li.querySelector(".card-link");
  link.href = `/scenarios/${encodeURIComponent(scenario.id)}`;
  link.textContent = scenario.title;
  const level = li.querySelector(".difficulty-badge");
  level.textContent = ui[`difficulty_${scenario.difficulty}`] || scenario.difficulty;
  level.classList.add(`difficulty-${scenario.difficulty}`);
  li.querySelector(".card-category").textContent = categoryName(scenario.category);
  li.querySelector(".card-minutes").textContent = format(ui.minutes, { n: scenario.estimated_minutes });
  li.querySelector(".card-desc").textContent = scenario.description;
  li.querySelector(".card-partner").textContent = format(ui.partner_is, { label: scenario.character.label });
  if (scenario.consent) {
    li.classList.add("needs-consent");
    li.querySelector(".consent-badge").hidden = false;
  }
  return li;
}

function count(n) {
  return format(n === 1 ? ui.catalogue_count_one : ui.catalogue_count, { n });
}

async function load() {
  const mine = ++generation;
  setQuery({ category: state.category, difficulty: state.difficulty, q: state.q });
  clearButton.hidden = !state.q;
  retryButton.hidden = true;
  list.setAttribute("aria-busy", "true");
  statusLine.textContent = ui.catalogue_loading;
  try {
    let scenarios;
    let message;
    if (state.q) {
      // Best first, as the service ranks them; the chips keep the catalogue's counts.
      const searchQuery = queryString({ q: state.q, lang, category: state.category, difficulty: state.difficulty });
      const [catalogue, matches] = await Promise.all([readCatalogue(true), api(`${scenarioApi}/search?${searchQuery}`)]);
      if (mine !== generation) return;
      categories = catalogue.categories;
      scenarios = matches.map((m) => m.scenario);
      message = scenarios.length ? format(ui.search_count, { q: state.q, n: scenarios.length }) : format(ui.search_none, { q: state.q });
    } else {
      const catalogue = await readCatalogue();
      if (mine !== generation) return;
      categories = catalogue.categories;
      scenarios = catalogue.scenarios;
      message = scenarios.length ? count(scenarios.length) : ui.catalogue_empty;
    }
    renderChips();
    list.replaceChildren(...scenarios.map(card));
    statusLine.textContent = message;
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof ApiError && error.status === 400 && state.category) {
      // A category the catalogue does not have (an old or mistyped link): show them all.
      state.category = "";
      load();
      return;
    }
    if (error instanceof ApiError && [429, 502, 503, 504].includes(error.status)) {
      statusLine.textContent = errorText(error);
    } else {
      statusLine.textContent = state.q ? ui.search_failed : ui.catalogue_failed;
    }
    retryButton.hidden = false;
  } finally {
    if (mine === generation) list.removeAttribute("aria-busy");
  }
}

chips.addEventListener("click", (e) => {
  const button = e.target.closest(".chip");
  if (!button) return;
  state.category = button.dataset.category;
  for (const other of chips.querySelectorAll(".chip")) other.setAttribute("aria-pressed", String(other === button));
  load();
});

difficulty.addEventListener("change", () => {
  state.difficulty = difficulty.value;
  load();
});

searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  state.q = searchInput.value.trim();
  load();
});

clearButton.addEventListener("click", () => {
  searchInput.value = "";
  state.q = "";
  load();
  searchInput.focus();
});

retryButton.addEventListener("click", load);

load();
