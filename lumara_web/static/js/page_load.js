// Reports how long the main page took to load, once, so /metrics can show it (page.load_ms).
// Best effort: a failed report is not the user's problem and shows nothing.

import {LIMITS} from "./page_config.js";

const PAGE_LOAD_URL = "/api/metrics/page-load";

function loadTime() {
  const [navigation] = performance.getEntriesByType("navigation");
  if (!navigation) return null;
  // Both count from the start of navigation; loadEventEnd is the end of the load handlers.
  const ms = navigation.loadEventEnd || navigation.duration;
  // The server refuses longer "loads" (a tab left loading in the background).
  return Number.isFinite(ms) && ms > 0 && ms <= LIMITS.pageLoadMs ? ms : null;
}

function report() {
  const ms = loadTime();
  if (ms === null) return;
  fetch(PAGE_LOAD_URL, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({ms}),
    keepalive: true, // still sent if the page is closed meanwhile
  }).catch(() => {});
}

// loadEventEnd is filled in only after the load event's handlers return: measure a task later.
const afterLoad = () => setTimeout(report, 0);
if (document.readyState === "complete") {
  afterLoad();
} else {
  window.addEventListener("load", afterLoad, {once: true});
}
