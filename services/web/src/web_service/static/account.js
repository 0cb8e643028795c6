// Account page: who the learner is (auth's /me), and for a guest the forms to keep their
// practice (upgrade: the guest becomes an account, every session kept) or to log in to another
// account; for an account, log out (the browser then carries on as a new guest). Tokens travel
// only in the HttpOnly cookies auth sets (X-Token-Delivery: cookie): this script never sees them.
import { csrfHeaders } from "/static/csrf.js";

const AUTH_API = "/api/v2/auth";
const TOKENS_IN_COOKIES = { "X-Token-Delivery": "cookie" };
// The page's wording (ui_text.py), in its language.
const ui = JSON.parse(document.getElementById("ui-text").textContent);
const lang = document.documentElement.lang || "ja";

const statusLine = document.getElementById("account-status");
const whoPart = document.getElementById("who");
const guestPart = document.getElementById("guest-part");
const accountPart = document.getElementById("account-part");

// An answer of auth that is not a success: kept whole, to say what went wrong.
class Refused extends Error {
  constructor(result) {
    super(`auth answered ${result.status}`);
    this.result = result;
  }
}

// One call to auth: JSON both ways, the CSRF header with every state-changing one.
async function call(method, path, body, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { ...csrfHeaders(method), ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(AUTH_API + path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) { /* 204, or not JSON (a proxy's error page) */ }
  const result = { ok: response.ok, status: response.status, data, retryAfter: response.headers.get("Retry-After") };
  if (!response.ok) throw new Refused(result);
  return result;
}

// The browser's sign-in goes on (its refresh cookie, which only auth receives), or a guest one
// starts: the learner it is signed in as.
async function renewSignIn() {
  return (await call("POST", "/session", { language: lang })).data.user;
}

async function currentUser() {
  try {
    return (await call("GET", "/me")).data;
  } catch (failure) {
    // No access token, or it ran out: renew the sign-in.
    if (failure instanceof Refused && failure.result.status === 401) return renewSignIn();
    throw failure;
  }
}

function show(user) {
  document.getElementById("who-kind").textContent = user.guest ? ui.kind_guest : ui.kind_account;
  document.getElementById("who-name").textContent = user.display_name;
  document.getElementById("who-email").textContent = user.email || ui.no_email;
  whoPart.hidden = false;
  guestPart.hidden = !user.guest;
  accountPart.hidden = user.guest;
}

// What each form does with its fields; each resolves to the learner signed in afterwards.
const ACTIONS = {
  "upgrade-form": async (fields) => {
    const body = { email: fields.email, password: fields.password, display_name: fields.display_name };
    try {
      return (await call("POST", "/upgrade", body, TOKENS_IN_COOKIES)).data.user;
    } catch (failure) {
      // The access token ran out while the page was open: renew the sign-in, try once more.
      if (!(failure instanceof Refused) || failure.result.status !== 401) throw failure;
      await renewSignIn();
      return (await call("POST", "/upgrade", body, TOKENS_IN_COOKIES)).data.user;
    }
  },
  "login-form": async (fields) => {
    const body = { email: fields.email, password: fields.password };
    return (await call("POST", "/login", body, TOKENS_IN_COOKIES)).data.user;
  },
  "logout-form": async () => {
    await call("POST", "/logout", {});
    return renewSignIn(); // a fresh guest, so the learner can go on practising at once
  },
};

// Auth's error codes a learner can meet here, in the page's language; anything else is shown
// as the server put it. A 401 from the log-in form is a wrong email or password.
const FIELD_TEXT = { email: "err_email", password: "err_password", display_name: "err_display_name" };
const FORM_ERROR_TEXT = { "login-form": { unauthenticated: "err_wrong_credentials" } };

function waitText(retryAfter) {
  const seconds = Number.parseInt(retryAfter || "", 10) || 60;
  return seconds < 120
    ? ui.wait_seconds.replace("{n}", String(seconds))
    : ui.wait_minutes.replace("{n}", String(Math.ceil(seconds / 60)));
}

// The fields the server found fault with (422: problems; 400: field).
function faultyFields(data) {
  const fields = (data?.problems || []).map((problem) => problem.field);
  if (data?.field) fields.push(data.field);
  return [...new Set(fields)];
}

function failureText(failure, formId, fallback) {
  if (!(failure instanceof Refused)) return ui.network_failed; // fetch itself failed
  const { status, data, retryAfter } = failure.result;
  const code = data?.error;
  const own = FORM_ERROR_TEXT[formId]?.[code];
  if (own) return ui[own];
  if (code === "conflict" && data.field === "email") return ui.err_email_taken;
  if (code === "invalid_request" || code === "invalid_argument") {
    const known = faultyFields(data).filter((field) => FIELD_TEXT[field]);
    if (known.length) return known.map((field) => ui[FIELD_TEXT[field]]).join(" ");
  }
  if (code === "rate_limited" || status === 429) return ui.err_rate_limited.replace("{wait}", waitText(retryAfter));
  if (code === "unavailable" || status === 503) return ui.err_unavailable;
  if (code === "csrf") return ui.err_csrf;
  return data?.message || fallback;
}

async function submit(form) {
  const button = form.querySelector("button[type=submit]");
  const error = form.querySelector(".form-error");
  button.disabled = true;
  button.textContent = ui.sending;
  form.setAttribute("aria-busy", "true");
  error.hidden = true;
  error.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  try {
    const user = await ACTIONS[form.id](Object.fromEntries(new FormData(form)));
    form.reset();
    show(user);
    statusLine.textContent = ui[form.dataset.success];
    statusLine.scrollIntoView({ block: "nearest" });
  } catch (failure) {
    error.textContent = failureText(failure, form.id, ui.err_unknown);
    error.hidden = false;
    if (failure instanceof Refused) {
      for (const field of faultyFields(failure.result.data)) form.elements[field]?.setAttribute("aria-invalid", "true");
    }
  } finally {
    button.disabled = false;
    button.textContent = button.dataset.label;
    form.removeAttribute("aria-busy");
  }
}

for (const form of document.querySelectorAll("form.account-form")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form);
  });
}

try {
  show(await currentUser());
  statusLine.textContent = "";
} catch (failure) {
  statusLine.textContent = failureText(failure, "", ui.account_load_failed);
}
