// Small DOM helpers. Everything here builds elements with textContent: no HTML strings.

import {MEMORY_TYPES} from "./page_config.js";

const SVG = "http://www.w3.org/2000/svg";

/** $("chat-input") → the element with that id (or null). */
export const $ = (id) => document.getElementById(id);

/**
 * h("button", {class: "btn", testid: "x", on: {click}}, "Text", child…) → element.
 * Props: class, text, testid, dataset {}, on {}, hidden, and plain attributes (aria-*, …).
 * Children: strings become text nodes; null/false are skipped; arrays are flattened.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "hidden") el.hidden = true;
    else if (key === "value") el.value = value;
    else if (key === "disabled") el.disabled = true;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const ICONS = {
  copy: ["M9 9h10v10H9z", "M5 15V5h10"],
  check: ["M5 12.5 10 17l9-10"],
  edit: ["M4 20h4L19 9l-4-4L4 16z", "M13.5 6.5l4 4"],
  trash: ["M4 7h16", "M9 7V4h6v3", "M6 7l1 13h10l1-13"],
  close: ["M6 6l12 12", "M18 6 6 18"],
  plus: ["M12 5v14", "M5 12h14"],
  alert: ["M12 8v5", "M12 16.5v.5", "M10.3 3.9 2.6 17.5A2 2 0 0 0 4.3 20.5h15.4a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z"],
  memory: ["M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z", "M12 8v4l3 2"],
};

/** A decorative inline SVG icon (aria-hidden). */
export function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** A tiny event bus between the modules. */
const target = new EventTarget();
export const bus = {
  emit(name, detail) { target.dispatchEvent(new CustomEvent(name, {detail})); },
  on(name, handler) { target.addEventListener(name, (event) => handler(event.detail)); },
};

/** 0.5925 → "59%". Ties round to even, as Python's format does. */
export function percent(similarity) {
  const value = Number(similarity) * 100;
  if (!Number.isFinite(value)) return "";
  let rounded = Math.round(value);
  if (Math.abs(value - Math.trunc(value)) === 0.5) {
    const down = Math.floor(value);
    rounded = down % 2 === 0 ? down : down + 1;
  }
  return `${rounded}%`;
}

const relative = new Intl.RelativeTimeFormat(undefined, {numeric: "auto"});
const dateFormat = new Intl.DateTimeFormat(undefined, {dateStyle: "medium"});
const fullFormat = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});

/** "just now", "5 min ago", "yesterday", or a date. */
export function ago(iso) {
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) return "";
  const seconds = (then.getTime() - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  if (abs < 86400 * 7) return relative.format(Math.round(seconds / 86400), "day");
  return dateFormat.format(then);
}

export function fullDate(iso) {
  const then = new Date(iso);
  return Number.isNaN(then.getTime()) ? "" : fullFormat.format(then);
}

/** "Garden, Plants ," → ["Garden", "Plants"] (the server lower-cases and de-duplicates). */
export function parseTags(text) {
  return String(text || "").split(",").map((tag) => tag.trim()).filter(Boolean);
}

export function truncate(text, length) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > length ? `${flat.slice(0, length - 1).trimEnd()}…` : flat;
}

/** Say something to screen readers (a polite live region). */
export function announce(text) {
  const region = $("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh text node after a tick, so repeating the same words is announced again.
  setTimeout(() => { region.textContent = text; }, 30);
}

/** Copy text to the clipboard; false when the browser refused (fails silently). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    try {
      const area = h("textarea", {class: "visually-hidden", "aria-hidden": "true"});
      area.value = text;
      document.body.append(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      return ok;
    } catch {
      return false;
    }
  }
}

/** A copy button: icon, accessible name, brief "Copied" feedback. */
export function copyButton({label, testid, getText, className = "icon-btn"}) {
  const button = h("button", {type: "button", class: className, testid, "aria-label": label,
                              title: label}, icon("copy"));
  let timer = 0;
  button.addEventListener("click", async () => {
    const ok = await copyText(getText());
    if (!ok) return;
    button.replaceChildren(icon("check"));
    button.classList.add("is-done");
    button.setAttribute("aria-label", "Copied");
    announce("Copied to the clipboard.");
    clearTimeout(timer);
    timer = setTimeout(() => {
      button.replaceChildren(icon("copy"));
      button.classList.remove("is-done");
      button.setAttribute("aria-label", label);
    }, 1600);
  });
  return button;
}

/** Grow a textarea with its content (CSS caps the height). */
export function autoGrow(area) {
  area.style.height = "auto";
  area.style.height = `${area.scrollHeight + 2}px`;
}

/** A <select> of the memory types, `selected` chosen; "method" is shown as "Method". */
export function typeSelect(props, selected) {
  return h("select", props, MEMORY_TYPES.map((type) =>
    h("option", {value: type, selected: type === selected},
      type.charAt(0).toUpperCase() + type.slice(1))));
}

export function store(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, String(value));
  } catch { /* storage unavailable: the page still works, it just forgets */ }
}

export function recall(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

export const narrowScreen = window.matchMedia("(max-width: 799.98px)");
