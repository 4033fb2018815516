// Lumara's page: wires the chat, the memories panel, the review queue, the status banner
// and the Data panel.

import {initChat} from "./js/chat.js";
import {initData} from "./js/data.js";
import {$, bus, narrowScreen} from "./js/dom.js";
import {initMemories} from "./js/memories.js";
import "./js/page_load.js";
import {initReview} from "./js/review.js";
import {initStatus} from "./js/status.js";

function readHealth() {
  try {
    return JSON.parse(document.body.dataset.health || "null");
  } catch {
    return null;
  }
}

function setView(view) {
  document.body.dataset.view = view;
  for (const button of document.querySelectorAll(".view-toggle .toggle-btn")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === view));
  }
}

function initLayout() {
  for (const button of document.querySelectorAll(".view-toggle .toggle-btn")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  bus.on("view", (view) => {
    if (narrowScreen.matches) setView(view);
  });

  // Below 1100 px the conversation list is a drawer.
  const toggle = $("conversations-toggle");
  const drawer = $("conversations");
  let scrim = null;
  const setDrawer = (open) => {
    document.body.classList.toggle("conversations-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.querySelector(".visually-hidden").textContent =
      open ? "Hide conversations" : "Show conversations";
    if (open && !scrim) {
      scrim = document.createElement("div");
      scrim.className = "drawer-scrim";
      scrim.addEventListener("click", () => setDrawer(false));
      document.body.append(scrim);
      drawer.querySelector("button")?.focus();
    } else if (!open && scrim) {
      scrim.remove();
      scrim = null;
    }
  };
  toggle.addEventListener("click", () => setDrawer(!document.body.classList.contains("conversations-open")));
  drawer.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("conversations-open") &&
        !event.defaultPrevented) {
      setDrawer(false);
      toggle.focus();
    }
  });
  bus.on("drawer:close", () => setDrawer(false));
  window.matchMedia("(max-width: 1100px)").addEventListener("change", () => setDrawer(false));
}

const health = readHealth();
initLayout();
initMemories();
initReview();
initChat(health);
initStatus(health);
initData(health);
