// The status banner: shown while a model loads or when start-up failed; polls /health.

import {get} from "./api.js";
import {$, announce, bus} from "./dom.js";

const LOADING = new Set(["loading", "not_started"]);
let timer = 0;
let last = null;

export function initStatus(initial) {
  // The chat socket dropped: is the server still there? (The banner says if not.)
  bus.on("connection:lost", () => {
    clearTimeout(timer);
    timer = setTimeout(poll, 300);
  });
  apply(initial);
  if (!initial || initial.status !== "ok") schedule(initial ? initial.status : "starting");
}

function schedule(status) {
  clearTimeout(timer);
  // Every second while starting; a failed start rarely mends itself, so less often then.
  const delay = status === "starting" ? 1000 : status === "unreachable" ? 2000 : 10000;
  timer = setTimeout(poll, delay);
}

async function poll() {
  try {
    const report = await get("/health");
    apply(report);
    if (report.status !== "ok") schedule(report.status);
  } catch (error) {
    show("error", "Lumara's server is not answering. Start it again (python app.py); " +
                  "this page reconnects by itself.");
    last = "unreachable";
    schedule("unreachable");
  }
}

function describe(report) {
  if (report.status === "error") {
    const reasons = [report.embedder?.error, report.chat_model?.error,
                     ...(report.database?.problems || [])].filter(Boolean);
    return reasons.length ? reasons.join(" ") : "Lumara could not start.";
  }
  const loading = [];
  if (LOADING.has(report.embedder?.state)) loading.push("embedding");
  if (LOADING.has(report.chat_model?.state)) loading.push("chat");
  if (!loading.length) return "Starting…";
  return `Loading the ${loading.join(" and ")} model${loading.length > 1 ? "s" : ""}…`;
}

function apply(report) {
  if (!report) return;
  if (report.status === "ok") {
    hide();
    if (last && last !== "ok") announce("Lumara is ready.");
  } else {
    show(report.status === "error" ? "error" : "loading", describe(report));
  }
  last = report.status;
  bus.emit("health", report);
}

function show(kind, text) {
  const banner = $("status-banner");
  banner.classList.toggle("is-error", kind === "error");
  banner.classList.toggle("is-loading", kind !== "error");
  banner.setAttribute("role", kind === "error" ? "alert" : "status");
  $("status-banner-text").textContent = text;
  banner.hidden = false;
}

function hide() {
  $("status-banner").hidden = true;
}
