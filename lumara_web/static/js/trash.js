// "Recently deleted": the trash, shown in place of the memory list. Deletes are soft until
// purged: from here a deleted memory can be restored (with its id, dates and history) or
// deleted forever, and the whole trash emptied.

import {api, del, get} from "./api.js";
import {$, ago, announce, bus, fullDate, h, icon, truncate} from "./dom.js";
import {closeOnEscape, confirmDialog, errorBox} from "./ui.js";

const PAGE = 30;

let toggle, view, browse, heading, list, summary, more, emptyButton, errorEl;

const state = {open: false, items: [], total: 0, keepDays: 0};
let requestSeq = 0; // newer loads win

export function initTrash() {
  toggle = $("trash-toggle");
  view = $("trash");
  browse = $("memory-browse");
  heading = $("trash-heading");
  list = $("trash-list");
  summary = $("trash-summary");
  more = $("trash-more");
  emptyButton = $("trash-empty");
  errorEl = $("trash-error");

  toggle.addEventListener("click", () => (state.open ? closeTrash() : openTrash()));
  $("trash-close").addEventListener("click", () => closeTrash());
  more.addEventListener("click", () => load({more: true}));
  emptyButton.addEventListener("click", emptyTrash);
  closeOnEscape(view, () => closeTrash());
  // A memory deleted elsewhere (a chat "Undo") while the trash is shown belongs in it.
  bus.on("memory:removed", () => { if (state.open) load(); });
  bus.on("database:replaced", () => { if (state.open) load(); });  // a backup restored
}

export function openTrash() {
  state.open = true;
  browse.hidden = true;
  view.hidden = false;
  toggle.setAttribute("aria-expanded", "true");
  heading.focus();
  return load();
}

export function closeTrash({focus = true} = {}) {
  if (!state.open) return;
  state.open = false;
  requestSeq += 1; // a load still in flight is no longer wanted
  view.hidden = true;
  browse.hidden = false;
  toggle.setAttribute("aria-expanded", "false");
  if (focus) toggle.focus();
}

async function load({more: loadMore = false} = {}) {
  const seq = ++requestSeq;
  const offset = loadMore ? state.items.length : 0;
  more.disabled = true;
  let data;
  try {
    data = await get(`/api/trash?limit=${PAGE}&offset=${offset}`);
  } catch (error) {
    if (seq !== requestSeq) return;
    more.disabled = false;
    showError(`Could not load the deleted memories: ${error.message}`);
    return;
  }
  if (seq !== requestSeq) return;
  showError(null);
  more.disabled = false;
  state.items = loadMore ? state.items.concat(data.items) : data.items;
  state.total = data.total;
  state.keepDays = data.trash_days;
  const items = data.items.map((entry) => trashItem(entry));
  if (loadMore) list.append(...items);
  else list.replaceChildren(...items);
  render();
}

function render() {
  const n = state.total;
  more.hidden = state.items.length >= n;
  emptyButton.hidden = n === 0;
  list.querySelector(".list-empty")?.remove();
  if (!n) {
    list.append(h("li", {class: "list-empty", text: "Nothing here. Deleted memories wait " +
                                                    "here until you delete them forever."}));
  }
  const kept = state.keepDays
    ? `Each is deleted for good ${state.keepDays} ${state.keepDays === 1 ? "day" : "days"} ` +
      "after it was deleted."
    : "They stay until you delete them forever.";
  summary.textContent = n
    ? `${n} deleted ${n === 1 ? "memory" : "memories"}, most recent first. ${kept}`
    : "";
}

function trashItem(entry) {
  const label = truncate(entry.content, 60);
  const item = h("li", {class: "memory", testid: "trash-item", dataset: {id: String(entry.id)},
                        tabindex: "-1"});
  const restore = h("button", {type: "button", class: "btn btn-quiet", testid: "trash-restore",
                               "aria-label": `Restore memory: ${label}`}, "Restore");
  const purge = h("button", {type: "button", class: "btn btn-quiet", testid: "trash-purge",
                             "aria-label": `Delete forever: ${label}`},
                  icon("trash"), "Delete forever");
  restore.addEventListener("click", () => restoreItem(item, entry, restore));
  purge.addEventListener("click", () => purgeItem(item, entry, purge));
  item.append(
    h("div", {class: "memory-head"},
      h("span", {class: `type-badge type-${entry.type}`, testid: "memory-type",
                 text: entry.type}),
      h("time", {class: "memory-date", datetime: entry.deleted_at,
                 title: `Deleted ${fullDate(entry.deleted_at)}`},
        `deleted ${ago(entry.deleted_at)}`)),
    h("p", {class: "memory-content", testid: "memory-content", text: entry.content}),
    h("div", {class: "memory-foot"},
      entry.tags && entry.tags.length
        ? h("ul", {class: "tags", "aria-label": "Tags"},
            entry.tags.map((tag) => h("li", {class: "tag", text: `#${tag}`})))
        : null,
      h("div", {class: "memory-actions"}, restore, purge)));
  return item;
}

async function restoreItem(item, entry, button) {
  button.disabled = true;
  try {
    const data = await api("POST", `/api/trash/${entry.id}/restore`);
    removeItem(item, entry.id);
    bus.emit("memory:added", data.memory);
    announce("Memory restored.");
  } catch (error) {
    button.disabled = false;
    if (error.status === 404) removeItem(item, entry.id);
    showError(`Could not restore: ${error.message}`);
  }
}

async function purgeItem(item, entry, button) {
  const yes = await confirmDialog({
    title: "Delete this memory forever?",
    message: "It cannot be restored afterwards.",
    detail: truncate(entry.content, 240),
    okLabel: "Delete forever",
  });
  if (!yes) return;
  button.disabled = true;
  try {
    await del(`/api/trash/${entry.id}`);
  } catch (error) {
    button.disabled = false;
    if (error.status !== 404) {
      showError(`Could not delete: ${error.message}`);
      return;
    }
  }
  removeItem(item, entry.id);
  announce("Memory deleted forever.");
}

async function emptyTrash() {
  const n = state.total;
  const yes = await confirmDialog({
    title: "Empty the trash?",
    message: `${n} deleted ${n === 1 ? "memory" : "memories"} will be gone for good. ` +
             "This cannot be undone.",
    okLabel: "Empty trash",
  });
  if (!yes) return;
  emptyButton.disabled = true;
  try {
    const data = await del("/api/trash");
    announce(`${data.purged} ${data.purged === 1 ? "memory" : "memories"} deleted forever.`);
    await load();
    heading.focus();
  } catch (error) {
    showError(`Could not empty the trash: ${error.message}`);
  } finally {
    emptyButton.disabled = false;
  }
}

/** Take an item off the list; focus goes to its neighbour (or the heading). */
function removeItem(item, id) {
  const next = item.nextElementSibling || item.previousElementSibling;
  const hadFocus = item.contains(document.activeElement) || !document.activeElement ||
                   document.activeElement === document.body;
  state.items = state.items.filter((entry) => entry.id !== id);
  state.total = Math.max(0, state.total - 1);
  item.remove();
  render();
  if (hadFocus) (next && next.matches(".memory") ? next : heading).focus({preventScroll: true});
}

function showError(message) {
  errorEl.replaceChildren();
  if (message) errorEl.append(errorBox(message, "trash-error"));
}
