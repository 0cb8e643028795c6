// CSRF: every state-changing request of the page carries the token of the csrf cookie in a
// header (the server compares the two; a page of another site can read neither). The cookie's
// and the header's names come from the page (<meta name="csrf-cookie">, <meta name="csrf-header">).
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || "";
const cookieName = meta("csrf-cookie");
const headerName = meta("csrf-header");
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === cookieName) return value.join("="); // as the server reads it: no decoding
  }
  return "";
}

// Headers to add to a request of `method`: the token (read now: a sign-in may have renewed it).
export function csrfHeaders(method = "POST") {
  if (SAFE_METHODS.has(method.toUpperCase()) || !cookieName || !headerName) return {};
  const token = csrfToken();
  return token ? { [headerName]: token } : {};
}

// HTMX requests (hx-post, hx-delete, ...) get the header too.
document.addEventListener("htmx:configRequest", (event) => {
  Object.assign(event.detail.headers, csrfHeaders(event.detail.verb || "GET"));
});
