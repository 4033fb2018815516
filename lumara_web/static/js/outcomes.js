// What a turn did besides answering, as notes in the conversation that stay after a reload
// (the server keeps them with the answer: chat/outcomes.py): a memory saved, with its Undo
// while it is kept; one suggested for review; one already kept; a possible contradiction.
// A note follows what happens to what it names elsewhere on the page (the memory list, the
// review panel, the contradiction dialog).

import {api, del} from "./api.js";
import {announce, bus, h, truncate} from "./dom.js";
import {undoToast} from "./ui.js";

const RESOLVED = {keep_both: "kept both", replace: "replaced the earlier memory",
                  keep_original: "kept the earlier memory"};

export function initOutcomes() {
  const update = (match, change) => {
    for (const note of document.querySelectorAll("[data-testid='outcome-note']")) {
      if (match(note.outcome)) render(note, change);
    }
  };
  bus.on("memory:removed", (id) => update(
    (o) => o.memory_id === id && o.kind !== "contradiction", {state: "gone"}));
  bus.on("memory:added", (memory) => update(
    (o) => o.memory_id === memory.id && (o.kind === "saved" || o.kind === "exists"),
    {state: "kept"}));
  bus.on("suggestion:settled", ({id, state, memory_id}) => update(
    (o) => o.kind === "suggested" && o.suggestion_id === id, {state, memory_id}));
  bus.on("contradiction:settled", ({id, resolution}) => update(
    (o) => o.kind === "contradiction" && o.contradiction_id === id,
    {state: "resolved", resolution}));
}

/** The note for one outcome record (a chat event's `outcome`, or one of a stored answer's
 * `outcomes`, which also say how things stand now). */
export function outcomeNote(outcome) {
  const note = h("p", {class: "chat-note outcome-note", testid: "outcome-note", tabindex: "-1"});
  // Just now, nothing has happened to it yet.
  const fresh = outcome.kind === "saved" || outcome.kind === "exists" ? "kept" : "pending";
  render(note, {state: fresh, ...outcome});
  return note;
}

function render(note, change) {
  const o = note.outcome = {...note.outcome, ...change};
  note.dataset.kind = o.kind;
  note.dataset.state = o.state;
  const quoted = (text) => h("span", {class: "note-content", text: `“${text}”`});
  const show = (id) => h("a", {href: `#memory-${id}`, class: "memory-link",
                               dataset: {memoryId: String(id)}}, "Show");
  const review = () => h("button", {type: "button", class: "btn-link", testid: "outcome-review",
                                    on: {click: () => bus.emit("review:show")}}, "Review");
  const gone = o.state === "gone";
  let parts;
  if (o.kind === "saved") {
    parts = gone ? [h("span", {text: "Saved, then removed:"}), quoted(o.content)]
      : [h("span", {text: "Saved:"}), quoted(o.content), show(o.memory_id),
         h("button", {type: "button", class: "btn-link", testid: "outcome-undo",
                      "aria-label": `Undo: saved “${truncate(o.content, 80)}”`,
                      on: {click: () => undoSave(note)}}, "Undo")];
  } else if (o.kind === "exists") {
    parts = [h("span", {text: gone ? "Already remembered (since removed):"
                                   : "Already remembered:"}), quoted(o.content)];
    if (!gone) parts.push(show(o.memory_id));
  } else if (o.kind === "suggested") {
    const label = {accepted: "Accepted from review:", dismissed: "Dismissed in review:",
                   gone: "Suggested for review:"}[o.state] || "Suggested for your review:";
    parts = [h("span", {text: label}), quoted(o.content)];
    if (o.state === "accepted" && o.memory_id) parts.push(show(o.memory_id));
    else if (o.state === "pending") parts.push(review());
  } else if (o.kind === "contradiction") {
    parts = [h("span", {text: "May contradict"}), quoted(o.existing_content),
             h("span", {text: o.explanation || ""})];
    if (o.state === "resolved") {
      parts.push(h("span", {text: `Settled: ${RESOLVED[o.resolution] || "decided"}.`}));
    } else if (o.state !== "gone") {
      parts.push(review());
    }
  } else {
    parts = [];
  }
  note.replaceChildren(...parts.flatMap((part, i) => (i ? [" ", part] : [part])));
}

/** The note's Undo: the memory goes to the trash; the toast that says so undoes that. */
async function undoSave(note) {
  const o = note.outcome;
  const button = note.querySelector("[data-testid='outcome-undo']");
  button.disabled = true;
  let undo = null;
  try {
    undo = (await del(`/api/memories/${o.memory_id}`)).undo;
  } catch (error) {
    button.disabled = false;
    if (error.status !== 404) {  // 404: removed already, elsewhere
      announce(`Could not remove it: ${error.message}`);
      return;
    }
  }
  bus.emit("memory:removed", o.memory_id);
  note.focus();  // the vanished button's place
  const what = truncate(o.content, 80);
  if (!undo) return;
  undoToast(`Removed: ${what}`, async () => {
    const data = await api(undo.method, undo.url);
    bus.emit("memory:added", data.memory);
    return {message: `Remembered again: ${what}`,
            after: () => note.querySelector("[data-testid='outcome-undo']")?.focus()};
  }, `removed “${what}”`);
}
