// The live feedback panel of the practice pages (free chat and roleplay): the web service's
// stream of feedback cards for one session (htmx SSE extension), one card per learner turn.
import { ensureSignedIn, forgetSignIn, lang } from "/static/page.js";

const PANEL_ID = "feedback-stream";

// Listen to the cards of session `id` (the stored ones first, then each new one).
export function connectFeedback(id) {
  const old = document.getElementById(PANEL_ID);
  const fresh = old.cloneNode(false);
  fresh.setAttribute("sse-connect", `/events/sessions/${encodeURIComponent(id)}/feedback?lang=${lang}`);
  old.replaceWith(fresh);
  htmx.process(fresh);
}

// Stop listening and clear the panel (a new conversation).
export function disconnectFeedback() {
  const old = document.getElementById(PANEL_ID);
  const fresh = old.cloneNode(false);
  fresh.removeAttribute("sse-connect");
  old.replaceWith(fresh);
}

// Once per page: keep the stream signed in, and finish each card as it arrives. `log` is the
// conversation's list, whose learner bubbles carry data-turn-id: a live card quotes from there.
export function watchFeedback(log) {
  // The stream is for the signed-in learner only (the HttpOnly cookie goes with it, same
  // origin): once the access token has run out it is refused, so sign in again and htmx's next
  // attempt to reconnect carries a fresh token.
  document.body.addEventListener("htmx:sseError", () => {
    ensureSignedIn().catch(() => forgetSignIn());
  });

  // Cards arrive as HTML fragments: fill in what CSP forbids inline (bar widths) and the
  // learner's own words for live cards.
  document.body.addEventListener("htmx:afterSwap", () => {
    // After a reconnect the server sends the stored cards again: keep one card per turn.
    const seen = new Set();
    for (const card of document.querySelectorAll(`#${PANEL_ID} article.card`)) {
      if (seen.has(card.dataset.turnId)) card.remove();
      else seen.add(card.dataset.turnId);
    }
    for (const fill of document.querySelectorAll(".card .fill[data-width]")) {
      fill.style.width = `${fill.dataset.width}%`;
      fill.removeAttribute("data-width");
    }
    for (const quote of document.querySelectorAll(".card .quote:empty")) {
      const source = log.querySelector(`[data-turn-id="${quote.dataset.forTurn}"] .body`);
      if (source) quote.textContent = source.textContent;
    }
  });
}
