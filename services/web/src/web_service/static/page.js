// What every practice page's script shares: the page's wording, the learner's sign-in (a guest
// one on a first visit), JSON calls to the APIs behind the gateway, and the language link.
//
// Who the learner is comes from the auth service's access token, kept by the browser in an
// HttpOnly cookie that no script sees: the page only knows when the token runs out.
import { csrfHeaders } from "/static/csrf.js";

// The page's wording (ui_text.py), in its language.
export const ui = JSON.parse(document.getElementById("ui-text").textContent);
export const lang = document.documentElement.lang || "ja";

let tokenExpiresAt = 0;
let signingIn = null;

// The browser's sign-in goes on (its refresh cookie: a returning learner keeps their sessions),
// or a guest one starts; the tokens come back as HttpOnly cookies. One at a time: the refresh
// token is rotated, so two at once would leave the second with a spent one.
export function signIn() {
  if (!signingIn) {
    signingIn = (async () => {
      const response = await fetch("/api/v2/auth/session", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...csrfHeaders("POST") },
        body: JSON.stringify({ language: lang }),
      });
      if (!response.ok) throw new Error(`sign-in failed: ${response.status}`);
      tokenExpiresAt = Date.now() + ((await response.json()).expires_in - 60) * 1000;
    })().finally(() => { signingIn = null; });
  }
  return signingIn;
}

export async function ensureSignedIn() {
  if (Date.now() >= tokenExpiresAt) await signIn();
}

// The access token was refused: sign in again before the next request.
export function forgetSignIn() {
  tokenExpiresAt = 0;
}

// An API's answer that is not a success: its status, its JSON body (if any) and how long to
// wait before trying again (Retry-After or the body's retry_after_s).
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(`the API answered ${status}`);
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter;
  }
}

// A JSON call to one of the platform's APIs (same origin, through the gateway), signed in; a
// refused token (401) is renewed once. Network failures throw a TypeError as fetch does.
export async function api(url, { method = "GET", body } = {}) {
  await ensureSignedIn();
  const call = () => {
    const init = { method, credentials: "same-origin", headers: { ...csrfHeaders(method) } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init);
  };
  let response = await call();
  if (response.status === 401) {
    forgetSignIn();
    await signIn();
    response = await call();
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) { /* 204, or not JSON (a proxy's error page) */ }
  if (!response.ok) throw new ApiError(response.status, data, retryAfterSeconds(response.headers.get("Retry-After"), data));
  return data;
}

export function retryAfterSeconds(header, body) {
  const seconds = Number(header || (body && body.retry_after_s));
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : 0;
}

// "{n}件" with n filled in: the wording's placeholders are {name}.
export function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// How long to wait, in words ("30秒", "2 minutes").
export function waitText(seconds) {
  const s = Math.max(1, seconds || 5);
  return s < 90 ? format(ui.wait_seconds, { n: s }) : format(ui.wait_minutes, { n: Math.ceil(s / 60) });
}

// The page's address changed (history.replaceState): the language link keeps pointing at the
// same page, filters and conversation included.
export function keepLanguageLink() {
  const link = document.querySelector(".lang-switch");
  if (!link) return;
  const url = new URL(window.location.href);
  url.searchParams.set("lang", link.lang);
  link.href = url.pathname + url.search;
}

// The address of the page with `changes` to its query (an empty value removes the name),
// without reloading it.
export function setQuery(changes) {
  const url = new URL(window.location.href);
  for (const [name, value] of Object.entries(changes)) {
    if (value) url.searchParams.set(name, value);
    else url.searchParams.delete(name);
  }
  window.history.replaceState(null, "", url.pathname + url.search);
  keepLanguageLink();
}

// What an API error says to the learner, in the page's language.
export function errorText(error) {
  if (!(error instanceof ApiError)) return ui.network_failed;
  if (error.status === 429) return format(ui.err_rate_limited, { wait: waitText(error.retryAfter) });
  if (error.status === 503 || error.status === 504 || error.status === 502) return ui.err_unavailable;
  if (error.status === 403 && error.body.error === "csrf") return ui.err_csrf;
  return ui.err_unknown;
}


// The message box of a conversation page: Enter sends (Shift+Enter is a new line; Enter while
// an IME is still composing is not a send); `canSend()` says whether a message may go now.
export function wireComposer(composer, input, canSend, send) {
  composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const message = input.value.trim();
    if (!message || !canSend()) return;
    input.value = "";
    send(message);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });
}
