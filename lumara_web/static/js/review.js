// What waits on the user's judgement: suggested memories (accept, edit, dismiss) and possible
// contradictions (one dialog at a time: keep both, replace, keep the original).

import {get, post} from "./api.js";
import {$, announce, bus, fullDate, h, parseTags, percent, truncate, typeSelect} from "./dom.js";
import {LIMITS} from "./page_config.js";
import {closeOnEscape, errorBox, isModalOpen, openModal, undoToast} from "./ui.js";

let suggestions = [];
const waiting = []; // contradictions not shown yet, oldest first
const later = new Map(); // id → contradiction the user put off (Esc)
let showing = null;

export function initReview() {
  bus.on("suggestion:new", (suggestion) => {
    if (suggestions.some((s) => s.id === suggestion.id)) return;
    suggestions.unshift(suggestion);
    renderSuggestions();
  });
  bus.on("contradiction:new", (contradiction) => enqueue(contradiction));
  bus.on("modal:closed", () => setTimeout(showNext, 0));
  bus.on("review:show", () => {
    bus.emit("view", "memories");
    const section = $("review");
    section.scrollIntoView({block: "start", behavior: "smooth"});
    section.querySelector("button")?.focus({preventScroll: true});
  });
  bus.on("memory:removed", (id) => {
    // A contradiction about a memory that is gone can no longer be decided.
    const gone = (c) => c.memory?.id === id || c.existing_memory?.id === id;
    for (let i = waiting.length - 1; i >= 0; i -= 1) if (gone(waiting[i])) waiting.splice(i, 1);
    for (const [key, c] of later) if (gone(c)) later.delete(key);
    renderSuggestions();
  });
  $("review-open").addEventListener("click", () => bus.emit("review:show"));
  loadSuggestions();
  loadContradictions();
}

// ---- suggestions ----------------------------------------------------------------------

async function loadSuggestions() {
  try {
    const data = await get("/api/suggestions");
    const known = new Map(suggestions.map((s) => [s.id, s]));
    suggestions = data.items.map((s) => ({...known.get(s.id), ...s}));
  } catch (error) {
    $("review").hidden = false;
    $("suggestion-list").replaceChildren(
      h("li", {}, errorBox(`Could not load suggestions: ${error.message}`, "memory-error")));
    return;
  }
  renderSuggestions();
}

function renderSuggestions() {
  const list = $("suggestion-list");
  const editing = list.querySelector(".suggestion-item.is-editing");
  const keep = editing ? Number(editing.dataset.id) : null;
  const items = suggestions.map((s) =>
    s.id === keep ? editing : suggestionItem(s));
  list.replaceChildren(...items);
  renderContradictionNote();
  const pending = suggestions.length + later.size;
  $("review").hidden = pending === 0;
  const badge = $("review-badge");
  badge.textContent = pending ? String(pending) : "";
  badge.hidden = pending === 0;
  if (pending) badge.setAttribute("aria-label", `${pending} to review`);
  // On a wide screen the Memories tab is not shown: the top bar carries the count.
  $("review-open").hidden = pending === 0;
  $("review-open-count").textContent = pending ? String(pending) : "";
  $("review-open").setAttribute("aria-label", `Review: ${pending} waiting`);
}

function suggestionItem(suggestion) {
  const item = h("li", {class: "suggestion-item", testid: "suggestion-item",
                        dataset: {id: String(suggestion.id)}});
  renderSuggestionView(item, suggestion);
  return item;
}

function renderSuggestionView(item, suggestion, error) {
  const meta = [h("span", {class: `type-badge type-${suggestion.type}`, text: suggestion.type})];
  if (suggestion.tags?.length) {
    meta.push(h("span", {text: suggestion.tags.map((t) => `#${t}`).join(" ")}));
  }
  const why = [`${percent(suggestion.confidence)} sure`];
  if (suggestion.reasons?.length) why.push(suggestion.reasons.join("; "));
  meta.push(h("span", {text: why.join(" · ")}));
  item.classList.remove("is-editing");
  item.replaceChildren(...[
    h("p", {class: "suggestion-content", text: suggestion.content}),
    h("div", {class: "suggestion-meta"}, meta),
    error ? errorBox(error, "memory-error") : null,
    h("div", {class: "button-row"},
      h("button", {type: "button", class: "btn btn-primary btn-small", testid: "suggestion-accept",
                   "aria-label": `Accept: ${truncate(suggestion.content, 60)}`,
                   on: {click: (e) => accept(item, suggestion, undefined, e.currentTarget)}},
        "Accept"),
      h("button", {type: "button", class: "btn btn-small", testid: "suggestion-edit",
                   "aria-label": `Edit before saving: ${truncate(suggestion.content, 60)}`,
                   on: {click: () => startEdit(item, suggestion)}}, "Edit"),
      h("button", {type: "button", class: "btn btn-quiet btn-small", testid: "suggestion-dismiss",
                   "aria-label": `Dismiss: ${truncate(suggestion.content, 60)}`,
                   on: {click: (e) => dismiss(item, suggestion, e.currentTarget)}},
        "Dismiss")),
  ].filter(Boolean));
}

function startEdit(item, suggestion) {
  const field = h("textarea", {testid: "suggestion-edit-content", rows: "3",
                               maxlength: String(LIMITS.contentChars),
                               "aria-label": "Memory to save"});
  field.value = suggestion.content;
  // The model's type and tags are guesses too ("#baking" on a passport): fixable here.
  const type = typeSelect({testid: "suggestion-edit-type"}, suggestion.type);
  const tags = h("input", {type: "text", testid: "suggestion-edit-tags", autocomplete: "off",
                           placeholder: "comma, separated"});
  tags.value = (suggestion.tags || []).join(", ");
  const feedback = h("div", {class: "form-feedback"});
  const save = h("button", {type: "submit", class: "btn btn-primary btn-small",
                            testid: "suggestion-save"}, "Save");
  const cancel = h("button", {type: "button", class: "btn btn-small"}, "Cancel");
  const form = h("form", {novalidate: true, "aria-label": "Edit suggestion"}, field,
                 h("div", {class: "row"},
                   h("label", {class: "field"}, h("span", {class: "field-label", text: "Type"}),
                     type),
                   h("label", {class: "field field-grow"},
                     h("span", {class: "field-label", text: "Tags"}), tags)),
                 feedback, h("div", {class: "button-row"}, save, cancel));
  const close = () => {
    renderSuggestionView(item, suggestion);
    item.querySelector("[data-testid='suggestion-edit']")?.focus();
  };
  cancel.addEventListener("click", close);
  closeOnEscape(form, close);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = field.value.trim();
    if (!content) {
      feedback.replaceChildren(errorBox("Write what to remember, or dismiss it.", "memory-error"));
      return;
    }
    const edits = {};
    if (content !== suggestion.content) edits.content = content;
    if (type.value !== suggestion.type) edits.type = type.value;
    const newTags = parseTags(tags.value);
    if (newTags.join("\n") !== (suggestion.tags || []).join("\n")) edits.tags = newTags;
    accept(item, suggestion, Object.keys(edits).length ? edits : undefined, save, feedback);
  });
  item.classList.add("is-editing");
  item.replaceChildren(form);
  field.focus();
}

async function accept(item, suggestion, edits, button, feedback) {
  button.disabled = true;
  try {
    const data = await post(`/api/suggestions/${suggestion.id}/accept`, edits || {});
    dropSuggestion(suggestion.id);
    bus.emit("memory:added", data.memory);
    bus.emit("suggestion:settled", {id: suggestion.id, state: "accepted",
                                    memory_id: data.memory.id});
    undoToast(`Saved: ${truncate(data.memory.content, 80)}`, () => reopen(suggestion));
  } catch (error) {
    button.disabled = false;
    settleFailure(item, suggestion, error, feedback);
  }
}

async function dismiss(item, suggestion, button) {
  button.disabled = true;
  try {
    await post(`/api/suggestions/${suggestion.id}/dismiss`);
    dropSuggestion(suggestion.id);
    bus.emit("suggestion:settled", {id: suggestion.id, state: "dismissed"});
    undoToast(`Dismissed: ${truncate(suggestion.content, 80)}`, () => reopen(suggestion));
  } catch (error) {
    button.disabled = false;
    settleFailure(item, suggestion, error);
  }
}

/** Undo of accept or dismiss (the toast's button): back in the list; a memory it made goes
 * to the trash. */
async function reopen(suggestion) {
  const data = await post(`/api/suggestions/${suggestion.id}/reopen`);
  if (data.deleted) bus.emit("memory:removed", data.deleted.id);
  bus.emit("suggestion:settled", {id: suggestion.id, state: "pending", memory_id: null});
  suggestions = [data.suggestion, ...suggestions.filter((s) => s.id !== suggestion.id)];
  renderSuggestions();
  return {message: "Back in your suggestions.",
          after: () => $("suggestion-list").querySelector(
            `[data-id="${suggestion.id}"] button`)?.focus({preventScroll: true})};
}

function settleFailure(item, suggestion, error, feedback) {
  if (error.code === "suggestion_not_found") {
    dropSuggestion(suggestion.id);
    return;
  }
  if (feedback) feedback.replaceChildren(errorBox(error.message, "memory-error"));
  else renderSuggestionView(item, suggestion, error.message);
  if (error.code === "already_settled") setTimeout(loadSuggestions, 4000);
}

function dropSuggestion(id) {
  const list = $("suggestion-list");
  const item = list.querySelector(`[data-id="${id}"]`);
  const next = item?.nextElementSibling || item?.previousElementSibling;
  const hadFocus = item?.contains(document.activeElement);
  suggestions = suggestions.filter((s) => s.id !== id);
  item?.remove();
  renderSuggestions();
  if (hadFocus) {
    const target = next?.isConnected ? next.querySelector("button") : $("memory-search");
    target?.focus({preventScroll: true});
  }
}

// ---- contradictions -------------------------------------------------------------------

async function loadContradictions() {
  try {
    const data = await get("/api/contradictions");
    for (const item of data.items) enqueue(item);
  } catch (error) {
    $("review").hidden = false;
    $("review-contradictions").hidden = false;
    $("review-contradictions").replaceChildren(
      errorBox(`Could not load possible contradictions: ${error.message}`, "memory-error"));
  }
}

function enqueue(contradiction) {
  if (!contradiction || !contradiction.memory || !contradiction.existing_memory) return;
  if (contradiction.status && contradiction.status !== "pending") return;
  const id = contradiction.id;
  if (showing?.id === id || waiting.some((c) => c.id === id) || later.has(id)) return;
  waiting.push(contradiction);
  showNext();
}

function showNext() {
  if (showing || isModalOpen() || !waiting.length) return;
  showing = waiting.shift();
  contradictionDialog(showing);
}

function renderContradictionNote() {
  const box = $("review-contradictions");
  if (!later.size) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const n = later.size;
  box.replaceChildren(
    h("span", {text: n === 1 ? "One possible contradiction waits for your decision."
                             : `${n} possible contradictions wait for your decision.`}),
    h("button", {type: "button", class: "btn-link", on: {click: () => {
      const first = later.values().next().value;
      later.delete(first.id);
      renderSuggestions();
      waiting.unshift(first);
      showNext();
    }}}, "Review now"));
  box.hidden = false;
}

function memoryCard(memory, {label, testid, isNew}) {
  return h("div", {class: `compare-card${isNew ? " is-new" : ""}`, testid},
    h("span", {class: "compare-label", text: label}),
    h("p", {class: "compare-content", text: memory.content}),
    h("span", {class: "compare-meta"},
      h("span", {class: `type-badge type-${memory.type}`, text: memory.type}), " ",
      `added ${fullDate(memory.created_at)}`));
}

function contradictionDialog(contradiction) {
  let modal = null;
  let busy = false;
  const errorSlot = h("div", {class: "modal-error"});

  const decideLater = () => {
    if (busy) return;
    later.set(contradiction.id, contradiction);
    showing = null;
    renderSuggestions();
    modal.close();
  };

  async function resolve(resolution, button) {
    if (busy) return;
    busy = true;
    for (const b of modal.element.querySelectorAll("button")) b.disabled = true;
    errorSlot.replaceChildren();
    try {
      const data = await post(`/api/contradictions/${contradiction.id}/resolve`, {resolution});
      if (data.deleted) bus.emit("memory:removed", data.deleted.id);
      bus.emit("contradiction:settled", {id: contradiction.id, resolution});
      showing = null;
      modal.close();
      announce({keep_both: "Kept both memories.",
                replace: "Replaced the older memory with the new one.",
                keep_original: "Kept the original memory; removed the new one."}[resolution]);
    } catch (error) {
      busy = false;
      for (const b of modal.element.querySelectorAll("button")) b.disabled = false;
      errorSlot.replaceChildren(errorBox(error.message, "memory-error"));
      if (error.code === "already_settled" || error.code === "contradiction_not_found") {
        // Decided elsewhere: nothing left to choose.
        for (const b of modal.element.querySelectorAll(".resolve-choice")) b.disabled = true;
      }
      button.focus();
    }
  }

  const choice = (testid, label, resolution, primary = false) =>
    h("button", {type: "button", class: `btn resolve-choice${primary ? " btn-primary" : ""}`,
                 testid, on: {click: (e) => resolve(resolution, e.currentTarget)}}, label);
  // Focus starts on the highlighted choice, so Enter does what the page suggests.
  const replace = choice("resolve-replace", "Replace (keep the new one)", "replace", true);

  modal = openModal({
    testid: "contradiction-dialog",
    title: "These memories may disagree",
    wide: true,
    onEscape: decideLater,
    initialFocus: () => replace,
    build(dialog) {
      const explanation = contradiction.explanation || "";
      dialog.append(
        h("p", {class: "modal-text", text: "Lumara saved something new that seems to " +
          "contradict an older memory. Which should it keep?"}),
        h("div", {class: "compare"},
          memoryCard(contradiction.existing_memory, {label: "Earlier memory",
                                                     testid: "contradiction-existing"}),
          memoryCard(contradiction.memory, {label: "New memory", testid: "contradiction-new",
                                            isNew: true})),
        explanation ? h("p", {class: "explanation"}, h("strong", {text: "Why: "}), explanation,
          contradiction.confidence != null
            ? ` (${percent(contradiction.confidence)} sure)` : "") : null,
        errorSlot,
        h("div", {class: "resolve-actions"},
          choice("resolve-keep-both", "Keep both", "keep_both"),
          replace,
          choice("resolve-keep-original", "Keep original", "keep_original"),
          h("button", {type: "button", class: "btn btn-quiet later",
                       on: {click: decideLater}}, "Decide later")));
    },
  });
}
