// A memory's history in a dialog: the memory now, then its earlier versions newest first,
// each with when it was replaced, what the change altered, and a Restore button.

import {get} from "./api.js";
import {ago, fullDate, h} from "./dom.js";
import {errorBox, openModal} from "./ui.js";

/**
 * Load and show the history of memory `memoryId`. restore(version) runs when a version's
 * Restore is chosen: it resolves once restored (the dialog then closes) or throws an ApiError
 * (shown in the dialog). Loading errors are thrown to the caller.
 */
export async function openHistory(memoryId, restore) {
  const {memory, versions} = await get(`/api/memories/${memoryId}/history`);
  const modal = openModal({
    testid: "history-dialog",
    title: "History",
    wide: true,
    build(dialog) {
      const feedback = h("div", {class: "modal-error"});
      const entries = [currentEntry(memory)];
      versions.forEach((version, index) => {
        const after = index === 0 ? memory : versions[index - 1];
        entries.push(versionEntry(version, after, async (button) => {
          button.disabled = true;
          feedback.replaceChildren();
          try {
            await restore(version.version);
            modal.close();
          } catch (error) {
            button.disabled = false;
            feedback.replaceChildren(errorBox(error.message, "history-error"));
          }
        }));
      });
      dialog.append(
        h("p", {class: "modal-text", text: versions.length
          ? "Every edit keeps the version it replaced. Restoring one keeps the current " +
            "text as a version too, so a restore can be undone."
          : "No earlier versions: this memory has not been edited."}),
        h("ol", {class: "history-list", testid: "history-list"}, entries),
        feedback,
        h("div", {class: "modal-actions"},
          h("button", {type: "button", class: "btn", testid: "history-close",
                       on: {click: () => modal.close()}}, "Close")));
    },
  });
}

function currentEntry(memory) {
  const edited = memory.updated_at !== memory.created_at;
  const when = edited ? memory.updated_at : memory.created_at;
  return h("li", {class: "history-entry is-current", testid: "history-current"},
    h("div", {class: "history-meta"},
      h("strong", {text: "Now"}),
      h("span", {class: `type-badge type-${memory.type}`, text: memory.type}),
      h("time", {datetime: when, title: fullDate(when)},
        `${edited ? "edited" : "added"} ${ago(when)}`)),
    h("p", {class: "memory-content", text: memory.content}),
    tagLine(memory.tags));
}

function versionEntry(version, after, onRestore) {
  const button = h("button", {type: "button", class: "btn btn-small", testid: "history-restore",
                              "aria-label": `Restore version ${version.version}`},
                   "Restore");
  button.addEventListener("click", () => onRestore(button));
  return h("li", {class: "history-entry", testid: "history-version",
                  dataset: {version: String(version.version)}},
    h("div", {class: "history-meta"},
      h("strong", {text: `Version ${version.version}`}),
      h("span", {class: `type-badge type-${version.type}`, text: version.type}),
      h("time", {datetime: version.replaced_at, title: fullDate(version.replaced_at)},
        `${version.change === "restore" ? "replaced by a restore" : "replaced by an edit"} ` +
        ago(version.replaced_at)),
      button),
    h("p", {class: "memory-content", text: version.content}),
    tagLine(version.tags),
    h("p", {class: "history-change", testid: "history-change",
            text: `Then changed: ${changes(version, after)}.`}));
}

/** What turned `before` into `after`, in words: "the text; type knowledge → method". */
function changes(before, after) {
  const parts = [];
  if (before.content !== after.content) parts.push("the text");
  if (before.type !== after.type) parts.push(`type ${before.type} → ${after.type}`);
  const tags = (memory) => (memory.tags || []).join(", ") || "none";
  if (tags(before) !== tags(after)) parts.push(`tags ${tags(before)} → ${tags(after)}`);
  if (JSON.stringify(before.metadata) !== JSON.stringify(after.metadata)) parts.push("details");
  return parts.join("; ") || "nothing visible";
}

function tagLine(tags) {
  if (!tags || !tags.length) return null;
  return h("ul", {class: "tags", "aria-label": "Tags"},
           tags.map((tag) => h("li", {class: "tag", text: `#${tag}`})));
}
