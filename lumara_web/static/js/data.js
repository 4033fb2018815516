// The Data panel (header → "Data"): export downloads, import of an export file with a
// progress bar and then a summary of what was added and skipped, re-embedding every
// memory with a progress bar, and the backups (back up now, restore one after asking). Both run as background jobs on the server: a job running when
// the page loads (a re-embed started at start-up after the embedding model changed, an
// import started before a reload) shows in a banner under the header, whether or not the
// panel is open, and in the panel when it is.

import {get, post} from "./api.js";
import {$, announce, bus, fullDate, h, percent, truncate} from "./dom.js";
import {confirmDialog, errorBox, openModal} from "./ui.js";

const POLL_MS = 500; // ~2 updates a second: a bar that moves, without flooding the server
const RETRY_MS = 2000; // after a failed poll (the server restarting)
const BANNER_DONE_MS = 6000; // how long the banner shows a finished run before it goes
const SKIPPED_SHOWN = 20; // duplicates listed by content; the rest are counted

const EXPORTS = [
  {testid: "export-json", label: "JSON", query: {}},
  {testid: "export-json-vectors", label: "JSON with vectors", query: {vectors: "1"}},
  {testid: "export-markdown", label: "Markdown", query: {format: "markdown"}, plain: true},
];

let embeddingModel = null;
let backupsView = null; // the open panel's backups section

// ---- a background job's state, polled while it runs ---------------------------------------

class Job {
  constructor(url, describe) {
    this.url = url;
    this.describe = describe;
    this.state = {state: "idle"}; // the last answer of GET url
    this.views = new Set(); // render(state, previous) of every display of it on screen
    this.timer = 0;
  }

  apply(next) {
    const previous = this.state;
    this.state = next;
    for (const render of this.views) render(next, previous);
    if (previous.state === "running" && next.state !== "running") announce(this.describe(next));
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.state.state === "running") this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  async poll() {
    try {
      this.apply(await get(this.url));
    } catch {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.poll(), RETRY_MS);
    }
  }
}

const reembed = new Job("/api/reembed", describeReembed);
const importing = new Job("/api/import", describeImport);
// Imports this page has seen running (started here, or found running after a reload): only
// their outcome is shown in the panel, not that of one from another tab or an earlier visit.
const importsSeen = new Set();

export function initData(health) {
  embeddingModel = health?.embedder?.model || null;
  $("data-open").addEventListener("click", openPanel);
  reembed.views.add(banner(reembed, "reembed"));
  importing.views.add(banner(importing, "import"));
  // A finished import adds memories: the list shows them (an import this page started, or
  // one it found running after a reload).
  importing.views.add((s, previous) => {
    if (s.state === "running") importsSeen.add(s.id);
    if (previous.state === "running" && s.state === "done" && s.result?.imported) {
      bus.emit("memories:reload");
    }
  });
  bus.on("health", (report) => { embeddingModel = report.embedder?.model || embeddingModel; });
  if (health?.reembed) reembed.apply(health.reembed);
  if (health?.import?.state === "running") importing.apply(health.import);
}

function count(n, one, many) {
  return `${Number(n).toLocaleString()} ${n === 1 ? one : many}`;
}

function progressText(s) {
  return `${Number(s.done).toLocaleString()} of ${Number(s.total).toLocaleString()}`;
}

function describeReembed(s) {
  const progress = progressText(s);
  if (s.state === "running") {
    if (s.reason === "model_changed") {
      return `The embedding model changed${s.previous_model ? ` (was ${s.previous_model})` : ""}:` +
             ` re-embedding your memories… ${progress}`;
    }
    return `Re-embedding your memories… ${progress}`;
  }
  if (s.state === "done") {
    const kept = s.total - (s.replaced ?? s.total);
    return `Re-embedded ${count(s.replaced ?? s.done, "memory", "memories")}` +
           `${s.model ? ` with ${s.model}` : ""}.` +
           (kept > 0 ? ` ${count(kept, "memory", "memories")} changed meanwhile and kept ` +
                       "the vector made by that change." : "");
  }
  if (s.state === "failed") return s.error || "Re-embedding failed.";
  return "";
}

// What each phase of an import does (transfer.PHASES), for a person.
const IMPORT_PHASES = {
  embedding: "Step 1 of 3: embedding the memories",
  checking: "Step 2 of 3: looking for duplicates",
  writing: "Step 3 of 3: saving the new memories",
};

function describeImport(s) {
  if (s.state === "running") {
    if (!s.phase) return `Importing ${count(s.memories, "memory", "memories")}…`;
    const rate = s.memories_per_s ? ` (${Math.round(s.memories_per_s).toLocaleString()}/s)` : "";
    return `${IMPORT_PHASES[s.phase] || s.phase}… ${progressText(s)}${rate}`;
  }
  if (s.state === "done" && s.result) return importLine(s.result);
  if (s.state === "failed") return s.error || "The import failed; nothing was imported.";
  return "";
}

function importLine(result) {
  return `Imported ${count(result.imported, "memory", "memories")}; skipped ` +
         `${count(result.skipped_duplicates.length, "duplicate", "duplicates")}.`;
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

/** A banner for `job` under the header, its test ids `${name}-banner…`; its render(). */
function banner(job, name) {
  let parts = null;
  let timer = 0;

  function build() {
    const text = h("span", {class: "banner-text", id: `${name}-banner-text`,
                            testid: `${name}-banner-text`});
    const bar = h("progress", {class: "job-bar", testid: `${name}-banner-progress`,
                               "aria-labelledby": `${name}-banner-text`});
    const element = h("div", {class: "status-banner is-loading job-banner",
                              testid: `${name}-banner`, hidden: true},
                      h("span", {class: "banner-icon", "aria-hidden": "true"}), text, bar);
    $("status-banner").after(element);
    return {element, text, bar};
  }

  return function render(s, previous) {
    clearTimeout(timer);
    if (s.state === "idle" || (s.state !== "running" && previous.state !== "running" &&
                               (!parts || parts.element.hidden))) {
      if (parts) parts.element.hidden = true;
      return;
    }
    parts ||= build();
    const {element, text, bar} = parts;
    element.classList.toggle("is-error", s.state === "failed");
    element.classList.toggle("is-loading", s.state !== "failed");
    text.textContent = job.describe(s);
    setBar(bar, s);
    bar.hidden = s.state === "failed";
    element.hidden = false;
    if (s.state === "done") timer = setTimeout(() => { element.hidden = true; }, BANNER_DONE_MS);
  };
}

// ---- the panel ------------------------------------------------------------------------

function openPanel() {
  let sections = [];
  const modal = openModal({
    testid: "data-panel",
    title: "Your data",
    wide: true,
    build(dialog) {
      sections = [[importing, importSection()], [reembed, reembedSection()]];
      backupsView = backupsSection();
      dialog.append(exportSection(), ...sections.map(([, section]) => section.element),
                    backupsView.element,
                    h("div", {class: "modal-actions"},
                      h("button", {type: "button", class: "btn", testid: "data-close",
                                   on: {click: () => modal.close()}}, "Close")));
    },
  });
  for (const [job, section] of sections) {
    // Removed by itself once the panel is closed.
    const render = (s, previous) => {
      if (!section.element.isConnected) job.views.delete(render);
      else section.render(s, previous);
    };
    job.views.add(render);
    render(job.state, job.state);
  }
  backupsView.load();
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
  const bar = h("progress", {class: "job-bar", testid: "import-progress",
                             "aria-labelledby": "import-status"});
  const status = h("p", {class: "data-text job-status", id: "import-status",
                         testid: "import-status"});
  const progress = h("div", {class: "job-progress", hidden: true}, bar, status);
  const result = h("div", {class: "import-result", testid: "import-result",
                           "aria-live": "polite"});
  let sending = false; // the file is being read, sent and checked (before the job starts)
  file.addEventListener("change", () => {
    submit.disabled = !file.files.length || importing.state.state === "running";
    result.replaceChildren();
  });
  submit.addEventListener("click", async () => {
    sending = true;
    submit.disabled = true;
    try {
      await runImport(file, result);
    } finally {
      sending = false;
      submit.disabled = importing.state.state === "running" || !file.files.length;
    }
  });

  function render(s, previous) {
    const running = s.state === "running";
    submit.disabled = running || sending || !file.files.length;
    progress.hidden = !running;
    if (running) {
      setBar(bar, s);
      status.textContent = describeImport(s);
      if (previous.state !== "running") result.replaceChildren();
    } else if (importsSeen.has(s.id) && (previous.state === "running" ||
                                         !result.childElementCount)) {
      if (s.state === "done") showImportSummary(result, s.result);
      else if (s.state === "failed") showImportError(result, describeImport(s));
    }
  }

  const element = h("section", {class: "data-section", "aria-labelledby": "import-heading"},
    h("h3", {class: "section-title", id: "import-heading"}, "Import"),
    h("p", {class: "data-text"}, "Add the memories of a Lumara export file. Memories you " +
      "already have are skipped; if anything in the file is wrong, nothing is imported. " +
      "A large file imports in the background: you can go on using Lumara meanwhile."),
    h("div", {class: "data-row"},
      h("label", {class: "field field-grow", for: "import-file"},
        h("span", {class: "field-label"}, "Export file (JSON)"), file),
      submit),
    progress, result);
  return {element, render};
}

async function runImport(fileInput, result) {
  const [file] = fileInput.files;
  if (!file) return;
  result.replaceChildren(h("p", {class: "data-text", text: `Sending ${file.name}…`}));
  let body;
  try {
    body = JSON.parse(await file.text());
  } catch (error) {
    showImportError(result, `${file.name} is not a JSON export file (${error.message}). ` +
                            "Nothing was imported.");
    return;
  }
  try {
    const started = await post("/api/import", body); // 202: checked whole, now running
    importsSeen.add(started.id);
    result.replaceChildren();
    importing.apply(started);
  } catch (error) {
    showImportError(result, error.message);
  }
}

function showImportError(result, message) {
  result.replaceChildren(errorBox(message, "import-error"));
}

function showImportSummary(result, summary) {
  const skipped = summary.skipped_duplicates || [];
  const line = importLine(summary);
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
  result.replaceChildren(...parts); // announced by the job (Job.apply)
}

function reembedSection() {
  const start = h("button", {type: "button", class: "btn btn-small", testid: "reembed-start"},
                  "Re-embed all memories");
  const bar = h("progress", {class: "job-bar", testid: "reembed-progress",
                             "aria-labelledby": "reembed-status"});
  const status = h("p", {class: "data-text job-status", id: "reembed-status",
                         testid: "reembed-status"});
  const error = h("div", {class: "reembed-error"});
  const progress = h("div", {class: "job-progress", hidden: true}, bar, status);
  const model = h("span", {class: "data-model"});

  // aria-disabled, not disabled, while it runs: a disabled button drops the focus to the
  // page body, where Esc no longer reaches the panel.
  const busy = (on) => start.setAttribute("aria-disabled", String(on));
  start.addEventListener("click", async () => {
    if (start.getAttribute("aria-disabled") === "true") return;
    busy(true);
    error.replaceChildren();
    try {
      reembed.apply(await post("/api/reembed"));
      announce("Re-embedding started.");
    } catch (failure) {
      error.replaceChildren(errorBox(failure.message, "reembed-error"));
      busy(false);
    }
  });

  function render(s) {
    model.textContent = embeddingModel ? ` (${embeddingModel})` : "";
    busy(s.state === "running");
    progress.hidden = s.state === "idle";
    if (s.state === "idle") return;
    setBar(bar, s);
    bar.hidden = s.state === "failed";
    status.textContent = describeReembed(s);
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

// ---- backups ----------------------------------------------------------------------------

// Why each backup was made (storage/backups.py REASONS), for a person.
const BACKUP_REASONS = {
  daily: "Daily",
  manual: "Made by hand",
  migration: "Before an upgrade",
  import: "Before an import",
  reembed: "Before a re-embed",
  "empty-trash": "Before emptying the trash",
  restore: "Before a restore",
};

function fileSize(bytes) {
  if (bytes < 2 ** 20) return `${Math.max(1, Math.round(bytes / 1024)).toLocaleString()} KB`;
  return `${(bytes / 2 ** 20).toLocaleString(undefined, {maximumFractionDigits: 1})} MB`;
}

function backupsSection() {
  const create = h("button", {type: "button", class: "btn btn-small", testid: "backup-create"},
                   "Back up now");
  const about = h("p", {class: "data-text", testid: "backup-about"});
  const list = h("ul", {class: "backup-list", testid: "backup-list",
                        "aria-labelledby": "backups-heading"});
  const status = h("p", {class: "data-text job-status", testid: "backup-status",
                         "aria-live": "polite"});
  const error = h("div", {class: "backup-error"});

  // aria-disabled, not disabled, while busy: focus stays where it is (see reembedSection).
  const busy = (on) => {
    for (const button of [create, ...list.querySelectorAll("button")]) {
      button.setAttribute("aria-disabled", String(on));
    }
  };
  const isBusy = () => create.getAttribute("aria-disabled") === "true";
  const say = (text) => {
    status.textContent = text;
    error.replaceChildren();
  };
  const fail = (message) => {
    status.textContent = "";
    error.replaceChildren(errorBox(message, "backup-error"));
  };

  function item(backup) {
    const when = fullDate(backup.created_at);
    const memories = backup.memories === null ? "unreadable"
      : count(backup.memories, "memory", "memories");
    return h("li", {class: "backup-item", testid: "backup-item", dataset: {name: backup.name}},
      h("span", {class: "backup-when"},
        h("span", {class: "backup-date", testid: "backup-date", text: when}),
        h("span", {class: "backup-meta", testid: "backup-meta",
                   text: `${BACKUP_REASONS[backup.reason] || backup.reason} · ` +
                         `${fileSize(backup.size)} · ${memories}`})),
      h("button", {type: "button", class: "btn btn-small", testid: "backup-restore",
                   "aria-label": `Restore the backup of ${when}`,
                   on: {click: () => { if (!isBusy()) restoreBackup(backup); }}}, "Restore"));
  }

  async function load() {
    try {
      const data = await get("/api/backups");
      about.textContent = data.keep > 0
        ? `Lumara keeps the last ${data.keep} backups in ${data.folder}: one a day while it ` +
          "runs, and one before each import, re-embed, emptied trash, upgrade and restore."
        : `Automatic backups are off (--backups 0); a backup made here goes to ${data.folder}.`;
      list.replaceChildren(...data.items.map(item));
      if (!data.items.length) {
        list.append(h("li", {class: "data-text", testid: "backup-empty"}, "No backups yet."));
      }
    } catch (failure) {
      fail(`Could not list the backups: ${failure.message}`);
    }
  }

  create.addEventListener("click", async () => {
    if (isBusy()) return;
    busy(true);
    say("Backing up…");
    try {
      const {backup} = await post("/api/backups");
      say(`Backed up ${count(backup.memories, "memory", "memories")} ` +
          `(${fileSize(backup.size)}).`);
      await load();
    } catch (failure) {
      fail(failure.message);
    } finally {
      busy(false);
    }
  });

  const element = h("section", {class: "data-section", "aria-labelledby": "backups-heading",
                                testid: "backups-section"},
    h("h3", {class: "section-title", id: "backups-heading"}, "Backups"),
    about,
    h("div", {class: "button-row"}, create),
    status, error, list);
  return {element, load, busy, say, fail};
}

async function restoreBackup(backup) {
  const yes = await confirmDialog({
    title: "Restore this backup?",
    message: `Your memories, trash and conversations go back to how they were on ` +
             `${fullDate(backup.created_at)} (${count(backup.memories ?? 0, "memory",
                                                        "memories")}). What you have now ` +
             "is backed up first, so you can come back to it.",
    okLabel: "Restore",
  });
  openPanel(); // the question took the panel's place: back to it, whatever the answer
  if (!yes) return;
  const view = backupsView;
  view.busy(true);
  view.say(`Restoring the backup of ${fullDate(backup.created_at)}…`);
  try {
    const result = await post(`/api/backups/${encodeURIComponent(backup.name)}/restore`);
    bus.emit("memories:reload");
    bus.emit("database:replaced");
    const done = `Restored ${count(result.memories, "memory", "memories")} from the backup ` +
                 `of ${fullDate(backup.created_at)}. What you had before is in the backup ` +
                 `of ${fullDate(result.previous.created_at)}.`;
    view.say(done); // read out: the status is a live region
    await view.load();
  } catch (failure) {
    view.fail(`Could not restore: ${failure.message}`);
  } finally {
    view.busy(false);
  }
}
