// The memories panel: newest-first list with paging, semantic search, type filters, the add
// form (with the duplicate check first), inline edit, delete with confirmation; an Undo toast
// after each edit and delete, each memory's history, and the trash (trash.js).

import {api, del, get, patch, post} from "./api.js";
import {$, ago, announce, bus, fullDate, h, icon, parseTags, percent, truncate,
        typeSelect} from "./dom.js";
import {openHistory} from "./memory_history.js";
import {LIMITS} from "./page_config.js";
import {closeTrash, initTrash} from "./trash.js";
import {closeOnEscape, confirmDialog, errorBox, undoToast} from "./ui.js";

const PAGE = 30;
const SEARCH_K = 25;
const DEBOUNCE_MS = 300;
const COLLAPSE_OVER = 200;

let list, searchField, clearButton, summary, moreButton, countEl, listError;

const state = {
  type: "", // "" = all
  query: "",
  items: [], // memories shown in list mode
  total: 0,
  loaded: false,
  searching: false, // list shows search results
};
let requestSeq = 0; // newer list/search requests win
let debounceTimer = 0;

export function initMemories() {
  list = $("memory-list");
  searchField = $("memory-search");
  clearButton = $("search-clear");
  summary = $("list-summary");
  moreButton = $("memories-more");
  countEl = $("memory-count");
  listError = $("list-error");

  searchField.addEventListener("input", onSearchInput);
  searchField.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && searchField.value) {
      event.preventDefault();
      event.stopPropagation();
      clearSearch();
    }
  });
  clearButton.addEventListener("click", () => {
    clearSearch();
    searchField.focus();
  });
  for (const button of document.querySelectorAll(".filters .chip")) {
    button.addEventListener("click", () => setType(button.dataset.type));
  }
  moreButton.addEventListener("click", () => loadList({more: true}));
  initAddForm();
  initTrash();

  bus.on("memory:added", (memory) => insertMemory(memory));
  bus.on("memory:removed", (id) => removeMemory(id));
  bus.on("memory:updated", (memory) => replaceMemory(memory));
  bus.on("memory:show", (id) => showMemory(id));
  bus.on("memories:reload", () => (state.query ? runSearch() : loadList()));  // after an import
  bus.on("health", (report) => {
    // The first list may have failed while the server was starting: try again.
    if (report.status === "ok" && !state.loaded && !state.loading) loadList();
  });

  loadList();
}

// ---- list and search ------------------------------------------------------------------

async function loadList({more = false} = {}) {
  const seq = ++requestSeq;
  const params = new URLSearchParams({limit: String(PAGE),
                                      offset: String(more ? state.items.length : 0)});
  if (state.type) params.set("type", state.type);
  moreButton.disabled = true;
  let data;
  state.loading = true;
  try {
    data = await get(`/api/memories?${params}`);
  } catch (error) {
    state.loading = false;
    if (seq !== requestSeq) return;
    moreButton.disabled = false;
    showListError(`Could not load memories: ${error.message}`);
    return;
  }
  state.loading = false;
  if (seq !== requestSeq) return;
  moreButton.disabled = false;
  showListError(null);
  state.loaded = true;
  state.searching = false;
  state.items = more ? state.items.concat(data.items) : data.items;
  state.total = data.total;
  if (more) {
    // Skip any memory already on screen (one a receipt link brought in out of order).
    const fresh = data.items.filter((memory) =>
      !list.querySelector(`[data-testid="memory-item"][data-id="${memory.id}"]`));
    list.append(...fresh.map((memory) => memoryItem(memory)));
  } else {
    list.replaceChildren(...state.items.map((memory) => memoryItem(memory)));
  }
  renderListChrome();
  if (!state.type) setCount(data.total);
}

async function runSearch() {
  const query = state.query;
  const seq = ++requestSeq;
  const params = new URLSearchParams({q: query, k: String(SEARCH_K)});
  if (state.type) params.set("type", state.type);
  summary.textContent = "Searching…";
  let data;
  try {
    data = await get(`/api/memories/search?${params}`);
  } catch (error) {
    if (seq !== requestSeq) return;
    summary.textContent = "";
    showListError(`Search failed: ${error.message}`);
    return;
  }
  if (seq !== requestSeq) return;
  showListError(null);
  state.searching = true;
  list.replaceChildren(...data.results.map((hit) => memoryItem(hit.memory, hit.similarity)));
  moreButton.hidden = true;
  const n = data.results.length;
  const kind = state.type ? `${state.type} ` : "";
  summary.textContent = n
    ? `${n} ${kind}${n === 1 ? "memory" : "memories"} close to “${truncate(query, 40)}”, ` +
      "most similar first"
    : "";
  if (!n) {
    list.append(h("li", {class: "list-empty",
                         text: `Nothing ${kind ? `of type ${state.type} ` : ""}close to ` +
                               `“${truncate(query, 60)}”. Try other words.`}));
  }
  announce(n ? `${n} search ${n === 1 ? "result" : "results"}.` : "No search results.");
}

function renderListChrome() {
  moreButton.hidden = state.searching || state.items.length >= state.total;
  const shown = state.items.length;
  list.querySelector(".list-empty")?.remove();
  if (!shown) {
    list.append(h("li", {class: "list-empty", text: state.type
      ? `No ${state.type} memories yet.`
      : "No memories yet. Add one above, or tell Lumara something in the chat."}));
    summary.textContent = "";
  } else if (state.type) {
    summary.textContent = `${state.total} ${state.type} ` +
      `${state.total === 1 ? "memory" : "memories"}`;
  } else {
    summary.textContent = shown < state.total ? `Newest ${shown} of ${state.total}` : "";
  }
}

function setCount(total) {
  countEl.textContent = `${total} ${total === 1 ? "memory" : "memories"}`;
}

function showListError(message) {
  listError.replaceChildren();
  if (message) listError.append(errorBox(message, "memory-error"));
}

function onSearchInput() {
  const query = searchField.value.trim();
  clearButton.hidden = !searchField.value;
  clearTimeout(debounceTimer);
  if (!query) {
    if (state.query) {
      state.query = "";
      loadList();
    }
    return;
  }
  debounceTimer = setTimeout(() => {
    state.query = query;
    runSearch();
  }, DEBOUNCE_MS);
}

function clearSearch() {
  clearTimeout(debounceTimer);
  searchField.value = "";
  clearButton.hidden = true;
  const wasSearching = state.query || state.searching;
  state.query = "";
  summary.textContent = "";
  if (wasSearching) return loadList();
  return Promise.resolve();
}

function setType(type) {
  state.type = type;
  for (const button of document.querySelectorAll(".filters .chip")) {
    button.setAttribute("aria-pressed", String(button.dataset.type === type));
  }
  return state.query ? runSearch() : loadList();
}

// ---- one memory -----------------------------------------------------------------------

function memoryItem(memory, similarity) {
  const item = h("li", {class: "memory", testid: "memory-item", id: `memory-${memory.id}`,
                        dataset: {id: String(memory.id)}, tabindex: "-1"});
  item.memory = memory;
  renderView(item, memory, similarity);
  return item;
}

function renderView(item, memory, similarity = item.similarity) {
  item.similarity = similarity;
  const contentId = `memory-content-${memory.id}`;
  const head = h("div", {class: "memory-head"},
    h("span", {class: `type-badge type-${memory.type}`, testid: "memory-type",
               text: memory.type}),
    similarity !== undefined && similarity !== null
      ? h("span", {class: "similarity", testid: "memory-similarity",
                   title: "How close in meaning to your search"},
          h("span", {class: "visually-hidden", text: "similarity "}), percent(similarity))
      : null,
    h("time", {class: "memory-date", datetime: memory.created_at,
               title: `Added ${fullDate(memory.created_at)}` +
                      (memory.updated_at !== memory.created_at
                        ? `, edited ${fullDate(memory.updated_at)}` : "")},
      ago(memory.created_at)));
  const long = memory.content.length > COLLAPSE_OVER;
  const content = h("p", {class: `memory-content${long ? " is-collapsed" : ""}`,
                          testid: "memory-content", id: contentId, text: memory.content});
  const parts = [head, content];
  const foot = h("div", {class: "memory-foot"});
  if (long) {
    const expand = h("button", {type: "button", class: "btn-link", testid: "memory-expand",
                                "aria-expanded": "false", "aria-controls": contentId},
                     "Expand");
    expand.addEventListener("click", () => {
      const open = content.classList.toggle("is-collapsed") === false;
      expand.textContent = open ? "Collapse" : "Expand";
      expand.setAttribute("aria-expanded", String(open));
    });
    foot.append(expand);
  }
  if (memory.tags && memory.tags.length) {
    foot.append(h("ul", {class: "tags", testid: "memory-tags", "aria-label": "Tags"},
                     memory.tags.map((tag) => h("li", {class: "tag", text: `#${tag}`}))));
  }
  foot.append(h("div", {class: "memory-actions"},
    h("button", {type: "button", class: "btn btn-quiet", testid: "memory-history",
                 "aria-label": `History of memory: ${truncate(memory.content, 60)}`,
                 on: {click: (event) => showHistory(item, event.currentTarget)}},
      icon("memory"), "History"),
    h("button", {type: "button", class: "btn btn-quiet", testid: "memory-edit",
                 "aria-label": `Edit memory: ${truncate(memory.content, 60)}`,
                 on: {click: () => startEdit(item)}}, icon("edit"), "Edit"),
    h("button", {type: "button", class: "btn btn-quiet", testid: "memory-delete",
                 "aria-label": `Delete memory: ${truncate(memory.content, 60)}`,
                 on: {click: (event) => deleteMemory(item, event.currentTarget)}},
      icon("trash"), "Delete")));
  parts.push(foot);
  item.replaceChildren(...parts);
}

function startEdit(item) {
  // One edit at a time: close any other.
  for (const open of list.querySelectorAll(".memory.is-editing")) {
    if (open === item) continue;
    open.classList.remove("is-editing");
    renderView(open, open.memory);
  }
  const memory = item.memory;
  const uid = `edit-${memory.id}`;
  const content = h("textarea", {id: `${uid}-content`, testid: "memory-edit-content",
                                 rows: String(Math.min(8, Math.max(3, Math.ceil(memory.content.length / 45)))),
                                 maxlength: String(LIMITS.contentChars)});
  content.value = memory.content;
  const type = typeSelect({id: `${uid}-type`, testid: "memory-edit-type"}, memory.type);
  const tags = h("input", {type: "text", id: `${uid}-tags`, testid: "memory-edit-tags",
                           autocomplete: "off", placeholder: "comma, separated"});
  tags.value = (memory.tags || []).join(", ");
  const feedback = h("div", {class: "form-feedback"});
  const save = h("button", {type: "submit", class: "btn btn-primary btn-small",
                            testid: "memory-edit-save"}, "Save");
  const cancel = h("button", {type: "button", class: "btn btn-small",
                              testid: "memory-edit-cancel"}, "Cancel");
  const form = h("form", {class: "memory-edit", "aria-label": "Edit memory", novalidate: true},
    h("label", {class: "field"}, h("span", {class: "field-label", text: "Content"}), content),
    h("div", {class: "row"},
      h("label", {class: "field"}, h("span", {class: "field-label", text: "Type"}), type),
      h("label", {class: "field field-grow"}, h("span", {class: "field-label", text: "Tags"}),
        tags)),
    feedback,
    h("div", {class: "button-row"}, cancel, save));

  const close = () => {
    item.classList.remove("is-editing");
    renderView(item, item.memory);
    item.querySelector("[data-testid='memory-edit']")?.focus();
  };
  cancel.addEventListener("click", close);
  closeOnEscape(form, close);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {};
    const newContent = content.value.trim();
    if (!newContent) {
      feedback.replaceChildren(errorBox("The memory can't be empty. Delete it instead?",
                                        "memory-error"));
      content.focus();
      return;
    }
    if (newContent !== memory.content) changes.content = newContent;
    if (type.value !== memory.type) changes.type = type.value;
    const newTags = parseTags(tags.value);
    const norm = (list) => list.map((t) => t.toLowerCase().replace(/\s+/g, " ")).join("\n");
    if (norm(newTags) !== norm(memory.tags || [])) changes.tags = newTags;
    if (!Object.keys(changes).length) {
      close();
      return;
    }
    save.disabled = true;
    feedback.replaceChildren();
    try {
      const data = await patch(`/api/memories/${memory.id}`, changes);
      item.memory = data.memory;
      item.classList.remove("is-editing");
      const hits = data.duplicates || [];
      renderView(item, data.memory, changes.content ? null : item.similarity);
      syncState(data.memory);
      if (hits.length) {
        item.append(h("p", {class: "memory-notice", role: "status",
                            text: `Very close to: “${truncate(hits[0].memory.content, 80)}” ` +
                                  `(${percent(hits[0].similarity)}).`}));
      }
      item.querySelector("[data-testid='memory-edit']")?.focus();
      offerUndo("Saved", `edited “${truncate(data.memory.content, 80)}”`, data.memory);
    } catch (error) {
      save.disabled = false;
      feedback.replaceChildren(errorBox(error.message, "memory-error"));
    }
  });

  item.classList.add("is-editing");
  item.replaceChildren(form);
  content.focus();
  content.setSelectionRange(content.value.length, content.value.length);
}

async function deleteMemory(item, button) {
  const memory = item.memory;
  const yes = await confirmDialog({
    title: "Delete this memory?",
    message: "Lumara will forget it. Until you delete it forever, you can restore it from " +
             "Recently deleted.",
    detail: truncate(memory.content, 240),
    okLabel: "Delete",
  });
  if (!yes) return;
  let undo = null;
  try {
    undo = (await del(`/api/memories/${memory.id}`)).undo;
  } catch (error) {
    if (error.status !== 404) {
      item.querySelector(".form-feedback, .memory-error")?.remove();
      item.append(errorBox(`Could not delete: ${error.message}`, "memory-error"));
      button.focus();
      return;
    }
  }
  const next = item.nextElementSibling || item.previousElementSibling;
  removeMemory(memory.id);
  (next && next.matches(".memory") ? next : searchField).focus({preventScroll: true});
  if (!undo) {
    announce("Memory deleted.");
    return;
  }
  const undoes = `deleted “${truncate(memory.content, 80)}”`;
  undoToast("Memory deleted", async () => {
    const data = await api(undo.method, undo.url);
    bus.emit("memory:added", data.memory);
    return {message: "Memory restored", after: () => focusMemory(data.memory.id)};
  }, undoes);
}

// ---- undo an edit, history --------------------------------------------------------------

/** A toast whose Undo brings back the version the change to `saved` replaced. */
function offerUndo(text, undoes, saved) {
  undoToast(text, async () => {
    const {versions} = await get(`/api/memories/${saved.id}/history`);
    // The version this change made (same timestamp); else the newest.
    const version = versions.find((v) => v.replaced_at === saved.updated_at) || versions[0];
    if (!version) throw new Error("There is no earlier version to go back to.");
    const data = await post(`/api/memories/${saved.id}/restore`, {version: version.version});
    bus.emit("memory:updated", data.memory);
    return {message: "Change undone", after: () => focusMemory(saved.id)};
  }, undoes);
}

async function showHistory(item, button) {
  const id = item.memory.id;
  item.querySelector(".memory-error")?.remove();
  try {
    await openHistory(id, async (version) => {
      const data = await post(`/api/memories/${id}/restore`, {version});
      bus.emit("memory:updated", data.memory);
      offerUndo(`Version ${version} restored`,
                `restored version ${version} of “${truncate(data.memory.content, 80)}”`,
                data.memory);
    });
  } catch (error) {
    item.append(errorBox(`Could not load the history: ${error.message}`, "memory-error"));
    button.focus();
  }
}

/** Put the focus on a memory in the list (after an undo took away the toast's button). */
function focusMemory(id) {
  const item = list.querySelector(`[data-testid="memory-item"][data-id="${id}"]`);
  item?.focus({preventScroll: true});
}

function syncState(memory) {
  const index = state.items.findIndex((m) => m.id === memory.id);
  if (index >= 0) state.items[index] = memory;
}

// ---- changes from elsewhere (chat, suggestions, contradictions, undo) -----------------

/** Newest first, as the server lists them: by created_at, then id. */
function isNewer(a, b) {
  return a.created_at === b.created_at ? a.id > b.id : a.created_at > b.created_at;
}

function insertMemory(memory) {
  if (state.items.some((m) => m.id === memory.id)) return;
  const fits = !state.type || state.type === memory.type;
  // Its place in the list: a new memory goes first, a restored one back where it was.
  let index = state.items.findIndex((m) => isNewer(memory, m));
  const unloaded = index < 0 && state.items.length < state.total; // comes with "Load more"
  if (index < 0) index = state.items.length;
  const next = state.items[index];
  if (fits) {
    if (!unloaded) state.items.splice(index, 0, memory);
    state.total += 1;
  }
  if (!state.type) setCount(state.total);
  else refreshCount();
  if (state.searching || state.query || !fits) return; // shown when the list is back
  if (!unloaded) {
    list.querySelector(".list-empty")?.remove();
    const nextItem = next &&
      list.querySelector(`[data-testid="memory-item"][data-id="${next.id}"]`);
    if (nextItem) nextItem.before(memoryItem(memory));
    else list.append(memoryItem(memory));
  }
  renderListChrome();
}

function removeMemory(id) {
  const index = state.items.findIndex((m) => m.id === id);
  if (index >= 0) {
    state.items.splice(index, 1);
    state.total = Math.max(0, state.total - 1);
  }
  list.querySelector(`[data-testid="memory-item"][data-id="${id}"]`)?.remove();
  if (!state.type && index >= 0) setCount(state.total);
  else refreshCount();
  if (!state.searching) renderListChrome();
}

function replaceMemory(memory) {
  syncState(memory);
  const item = list.querySelector(`[data-testid="memory-item"][data-id="${memory.id}"]`);
  if (item && !item.classList.contains("is-editing")) {
    item.memory = memory;
    renderView(item, memory);
  }
}

async function refreshCount() {
  try {
    const data = await get("/api/memories?limit=1");
    setCount(data.total);
  } catch { /* the count is a nicety */ }
}

/** Scroll to a memory (from a receipt link) and highlight it, loading it if need be. */
async function showMemory(id) {
  bus.emit("view", "memories");
  closeTrash({focus: false});
  let item = list.querySelector(`[data-testid="memory-item"][data-id="${id}"]`);
  if (!item && (state.query || state.searching || state.type)) {
    await clearSearch();
    if (state.type) await setType("");
    item = list.querySelector(`[data-testid="memory-item"][data-id="${id}"]`);
  }
  if (!item) {
    try {
      const data = await get(`/api/memories/${id}`);
      item = memoryItem(data.memory);
      list.querySelector(".list-empty")?.remove();
      list.prepend(item);
    } catch (error) {
      showListError(error.status === 404
        ? "That memory no longer exists: it was deleted after this answer."
        : `Could not show the memory: ${error.message}`);
      return;
    }
  }
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  item.scrollIntoView({block: "center", behavior: smooth ? "smooth" : "auto"});
  item.classList.remove("is-highlighted");
  void item.offsetWidth; // restart the animation
  item.classList.add("is-highlighted");
  item.focus({preventScroll: true});
}

// ---- the add form ---------------------------------------------------------------------

function initAddForm() {
  const form = $("add-form");
  const content = $("add-content");
  const type = $("add-type");
  const tags = $("add-tags");
  const submit = $("add-submit");
  const feedback = $("add-feedback");
  let busy = false;

  const reset = () => feedback.replaceChildren();
  content.addEventListener("input", () => {
    if (feedback.querySelector("[data-testid='duplicate-warning']")) reset();
  });
  content.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  async function add(body) {
    const data = await post("/api/memories", body);
    content.value = "";
    tags.value = "";
    reset();
    insertMemory(data.memory);
    announce("Memory added.");
    const near = data.contradiction_candidates || [];
    if (near.length) {
      feedback.append(h("p", {class: "info-note", role: "status",
        text: `Added. It is close to “${truncate(near[0].memory.content, 70)}” ` +
              `(${percent(near[0].similarity)}): check they agree.`}));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const body = {content: content.value.trim(), type: type.value, tags: parseTags(tags.value)};
    reset();
    if (!body.content) {
      feedback.append(errorBox("Write what to remember first.", "memory-error"));
      content.focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    try {
      const check = await post("/api/memories/check", {content: body.content});
      const duplicates = check.duplicates || [];
      if (duplicates.length) {
        showDuplicates(duplicates, body);
      } else {
        await add(body);
        content.focus();
      }
    } catch (error) {
      feedback.replaceChildren(errorBox(error.message, "memory-error"));
    } finally {
      busy = false;
      submit.disabled = false;
    }
  });

  function showDuplicates(duplicates, body) {
    const anyway = h("button", {type: "button", class: "btn btn-primary btn-small",
                                testid: "duplicate-add-anyway"}, "Add anyway");
    const cancel = h("button", {type: "button", class: "btn btn-small",
                                testid: "duplicate-cancel"}, "Cancel");
    const warning = h("div", {class: "duplicate-warning", testid: "duplicate-warning",
                              role: "alert"},
      h("p", {text: duplicates.length === 1
        ? "You already have a memory very like this one:"
        : `You already have ${duplicates.length} memories very like this one:`}),
      h("ul", {}, duplicates.map((hit) => h("li", {},
        h("span", {class: `dot type-${hit.memory.type}`, "aria-hidden": "true"}),
        h("span", {class: "dup-text", text: hit.memory.content}),
        h("span", {class: "dup-sim"}, h("span", {class: "visually-hidden", text: "similarity "}),
          percent(hit.similarity))))),
      h("div", {class: "button-row"}, anyway, cancel));
    feedback.replaceChildren(warning);
    anyway.focus();
    anyway.addEventListener("click", async () => {
      anyway.disabled = true;
      cancel.disabled = true;
      try {
        await add(body);
        content.focus();
      } catch (error) {
        feedback.replaceChildren(errorBox(error.message, "memory-error"));
      }
    });
    cancel.addEventListener("click", () => {
      reset();
      content.focus();
    });
  }
}
