// The Data panel (header → "Data"): export downloads, import of an export file with a summary
// of what was added and skipped, and re-embedding every memory with a progress bar. A
// re-embed running in the background (one started at start-up after the embedding model
// changed) shows in a banner under the header, whether or not the panel is open.

import {get, post} from "./api.js";
import {$, announce, bus, h, percent, truncate} from "./dom.js";
import {errorBox, openModal} from "./ui.js";

const POLL_MS = 500; // ~2 updates a second: a bar that moves, without flooding the server
const RETRY_MS = 2000; // after a failed poll (the server restarting)
const BANNER_DONE_MS = 6000; // how long the banner shows a finished run before it goes
const SKIPPED_SHOWN = 20; // duplicates listed by content; the rest are counted

const EXPORTS = [
  {testid: "export-json", label: "JSON", query: {}},
  {testid: "export-json-vectors", label: "JSON with vectors", query: {vectors: "1"}},
  {testid: "export-markdown", label: "Markdown", query: {format: "markdown"}, plain: true},
];

let state = {state: "idle"}; // the last GET /api/reembed answer
const views = new Set(); // render(state) of every progress display on screen
let pollTimer = 0;
let polling = 0; // reasons to keep polling while nothing runs yet (an import in flight)
let embeddingModel = null;

export function initData(health) {
  embeddingModel = health?.embedder?.model || null;
  $("data-open").addEventListener("click", openPanel);
  views.add(renderBanner);
  bus.on("health", (report) => { embeddingModel = report.embedder?.model || embeddingModel; });
  if (health?.reembed) apply(health.reembed);
}

// ---- the re-embed state, polled while something runs -----------------------------------

function apply(next) {
  const previous = state;
  state = next;
  for (const render of views) render(state, previous);
  if (previous.state === "running" && state.state !== "running") announce(describe(state));
  schedule();
}

function schedule() {
  clearTimeout(pollTimer);
  if (state.state === "running" || polling > 0) pollTimer = setTimeout(poll, POLL_MS);
}

async function poll() {
  try {
    apply(await get("/api/reembed"));
  } catch {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, RETRY_MS);
  }
}

function count(n, one, many) {
  return `${Number(n).toLocaleString()} ${n === 1 ? one : many}`;
}

function describe(s) {
  const progress = `${Number(s.done).toLocaleString()} of ${Number(s.total).toLocaleString()}`;
  if (s.state === "running") {
    if (s.reason === "import") return `Embedding the imported memories… ${progress}`;
    if (s.reason === "model_changed") {
      return `The embedding model changed${s.previous_model ? ` (was ${s.previous_model})` : ""}:` +
             ` re-embedding your memories… ${progress}`;
    }
    return `Re-embedding your memories… ${progress}`;
  }
  if (s.state === "done") {
    if (s.reason === "import") return `Embedded ${count(s.total, "imported memory", "imported memories")}.`;
    const kept = s.total - (s.replaced ?? s.total);
    return `Re-embedded ${count(s.replaced ?? s.done, "memory", "memories")}` +
           `${s.model ? ` with ${s.model}` : ""}.` +
           (kept > 0 ? ` ${count(kept, "memory", "memories")} changed meanwhile and kept ` +
                       "the vector made by that change." : "");
  }
  if (s.state === "failed") return s.error || "Re-embedding failed.";
  return "";
}

function setBar(bar, s) {
  if (s.total > 0) {
    bar.max = s.total;
    bar.value = Math.min(s.done, s.total);
  } else if (s.state === "running") {
    bar.removeAttribute("value"); // indeterminate until the total is known
  } else {
    bar.max = 1;
    bar.value = 1;
  }
}

// ---- the banner under the header ------------------------------------------------------

let banner = null;
let bannerTimer = 0;

function bannerParts() {
  if (banner) return banner;
  const text = h("span", {class: "banner-text", id: "reembed-banner-text",
                          testid: "reembed-banner-text"});
  const bar = h("progress", {class: "reembed-bar", testid: "reembed-banner-progress",
                             "aria-labelledby": "reembed-banner-text"});
  const element = h("div", {class: "status-banner is-loading reembed-banner",
                            testid: "reembed-banner", hidden: true},
                    h("span", {class: "banner-icon", "aria-hidden": "true"}), text, bar);
  $("status-banner").after(element);
  banner = {element, text, bar};
  return banner;
}

function renderBanner(s, previous) {
  clearTimeout(bannerTimer);
  if (s.state === "idle" || (s.state !== "running" && previous.state !== "running" &&
                             (!banner || banner.element.hidden))) {
    if (banner) banner.element.hidden = true;
    return;
  }
  const {element, text, bar} = bannerParts();
  element.classList.toggle("is-error", s.state === "failed");
  element.classList.toggle("is-loading", s.state !== "failed");
  text.textContent = describe(s);
  setBar(bar, s);
  bar.hidden = s.state === "failed";
  element.hidden = false;
  if (s.state === "done") bannerTimer = setTimeout(() => { element.hidden = true; }, BANNER_DONE_MS);
}

// ---- the panel ------------------------------------------------------------------------

function openPanel() {
  let render = null;
  const modal = openModal({
    testid: "data-panel",
    title: "Your data",
    wide: true,
    build(dialog) {
      const reembed = reembedSection();
      render = reembed.render;
      dialog.append(exportSection(), importSection(), reembed.element,
                    h("div", {class: "modal-actions"},
                      h("button", {type: "button", class: "btn", testid: "data-close",
                                   on: {click: () => modal.close()}}, "Close")));
    },
  });
  views.add(render);
  render(state, state);
}

function exportHref(query, versions) {
  const params = new URLSearchParams(query);
  if (versions) params.set("versions", "1");
  const text = params.toString();
  return `/api/export${text ? `?${text}` : ""}`;
}

function exportSection() {
  const versions = h("input", {type: "checkbox", id: "export-versions",
                               testid: "export-versions"});
  const links = EXPORTS.map((item) =>
    h("a", {class: "btn btn-small", href: exportHref(item.query, false), download: true,
            testid: item.testid}, item.label));
  versions.addEventListener("change", () => {
    EXPORTS.forEach((item, index) => {
      if (!item.plain) links[index].href = exportHref(item.query, versions.checked);
    });
  });
  return h("section", {class: "data-section", "aria-labelledby": "export-heading"},
    h("h3", {class: "section-title", id: "export-heading"}, "Export"),
    h("p", {class: "data-text"}, "Download every memory: JSON to import again later or " +
      "elsewhere (with vectors, an import by the same model needs no re-embedding), " +
      "Markdown to read."),
    h("div", {class: "button-row"}, links),
    h("label", {class: "data-check", for: "export-versions"}, versions,
      " Include the earlier versions of edited memories (JSON)"));
}

function importSection() {
  const file = h("input", {type: "file", id: "import-file", testid: "import-file",
                           accept: ".json,application/json"});
  const submit = h("button", {type: "button", class: "btn btn-primary btn-small",
                              testid: "import-submit", disabled: true}, "Import");
  const result = h("div", {class: "import-result", testid: "import-result",
                           "aria-live": "polite"});
  file.addEventListener("change", () => {
    submit.disabled = !file.files.length;
    result.replaceChildren();
  });
  submit.addEventListener("click", () => runImport(file, submit, result));
  return h("section", {class: "data-section", "aria-labelledby": "import-heading"},
    h("h3", {class: "section-title", id: "import-heading"}, "Import"),
    h("p", {class: "data-text"}, "Add the memories of a Lumara export file. Memories you " +
      "already have are skipped; if anything in the file is wrong, nothing is imported."),
    h("div", {class: "data-row"},
      h("label", {class: "field field-grow", for: "import-file"},
        h("span", {class: "field-label"}, "Export file (JSON)"), file),
      submit),
    result);
}

async function runImport(fileInput, submit, result) {
  const [file] = fileInput.files;
  if (!file) return;
  submit.disabled = true;
  result.replaceChildren(h("p", {class: "data-text", text: `Importing ${file.name}…`}));
  let body;
  try {
    body = JSON.parse(await file.text());
  } catch (error) {
    showImportError(result, `${file.name} is not a JSON export file (${error.message}). ` +
                            "Nothing was imported.");
    submit.disabled = false;
    return;
  }
  polling += 1; // a large import from another model reports its embedding progress
  schedule();
  try {
    const summary = await post("/api/import", body);
    showImportSummary(result, summary);
    if (summary.imported) bus.emit("memories:reload");
  } catch (error) {
    showImportError(result, error.message);
  } finally {
    polling -= 1;
    submit.disabled = false;
    poll();
  }
}

function showImportError(result, message) {
  result.replaceChildren(errorBox(message, "import-error"));
}

function showImportSummary(result, summary) {
  const skipped = summary.skipped_duplicates || [];
  const line = `Imported ${count(summary.imported, "memory", "memories")}; skipped ` +
               `${count(skipped.length, "duplicate", "duplicates")}.`;
  const parts = [h("p", {class: "import-counts", testid: "import-summary"}, line)];
  if (skipped.length) {
    parts.push(h("p", {class: "data-text"}, "Already there, so not added again:"));
    parts.push(h("ul", {class: "import-skipped"}, skipped.slice(0, SKIPPED_SHOWN).map((item) =>
      h("li", {testid: "import-skipped"},
        h("span", {class: "dup-text", text: truncate(item.content, 160)}),
        h("span", {class: "dup-sim"}, item.similarity >= 1 ? "same text"
          : `${percent(item.similarity)} similar`)))));
    if (skipped.length > SKIPPED_SHOWN) {
      parts.push(h("p", {class: "data-text"},
                   `…and ${count(skipped.length - SKIPPED_SHOWN, "more", "more")}.`));
    }
  }
  result.replaceChildren(...parts);
  announce(line);
}

function reembedSection() {
  const start = h("button", {type: "button", class: "btn btn-small", testid: "reembed-start"},
                  "Re-embed all memories");
  const bar = h("progress", {class: "reembed-bar", testid: "reembed-progress",
                             "aria-labelledby": "reembed-status"});
  const status = h("p", {class: "data-text reembed-status", id: "reembed-status",
                         testid: "reembed-status"});
  const error = h("div", {class: "reembed-error"});
  const progress = h("div", {class: "reembed-progress", hidden: true}, bar, status);
  const model = h("span", {class: "data-model"});

  start.addEventListener("click", async () => {
    start.disabled = true;
    error.replaceChildren();
    try {
      apply(await post("/api/reembed"));
      announce("Re-embedding started.");
    } catch (failure) {
      error.replaceChildren(errorBox(failure.message, "reembed-error"));
      start.disabled = false;
    }
  });

  function render(s) {
    if (!element.isConnected) { // the panel was closed
      views.delete(render);
      return;
    }
    model.textContent = embeddingModel ? ` (${embeddingModel})` : "";
    start.disabled = s.state === "running";
    progress.hidden = s.state === "idle";
    if (s.state === "idle") return;
    setBar(bar, s);
    bar.hidden = s.state === "failed";
    status.textContent = describe(s);
    status.classList.toggle("is-error", s.state === "failed");
  }

  const element = h("section", {class: "data-section", "aria-labelledby": "reembed-heading"},
    h("h3", {class: "section-title", id: "reembed-heading"}, "Re-embed"),
    h("p", {class: "data-text"}, "Make every memory's vector again with the current " +
      "embedding model", model, ". Needed after changing the model (Lumara starts it by " +
      "itself then); search keeps working meanwhile."),
    h("div", {class: "button-row"}, start), error, progress);
  return {element, render};
}
