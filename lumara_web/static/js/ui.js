// Dialogs (modal, keyboard operable, focus trapped and restored) and toasts.

import {$, announce, bus, h, icon} from "./dom.js";

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), " +
                  "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

let openDialog = null; // only one modal at a time; others wait for it (see whenNoModal)

export function isModalOpen() {
  return openDialog !== null;
}

function outsideParts() {
  return [document.querySelector(".topbar"), $("status-banner"), $("app"), $("toasts"),
          document.querySelector(".skip-link")].filter(Boolean);
}

function focusables(container) {
  return [...container.querySelectorAll(FOCUSABLE)].filter(
    (el) => el.getClientRects().length > 0 && !el.closest("[hidden]"));
}

/**
 * Open a modal dialog. build(dialog) fills it. onEscape runs on Esc (default: close).
 * Returns {element, close}. Focus goes to `initialFocus` (or the first control) and comes
 * back to what had it when the dialog closes.
 */
export function openModal({testid, title, wide = false, build, onEscape, onBackdrop,
                           initialFocus}) {
  if (openDialog) openDialog.close({restore: false});
  const previous = document.activeElement;
  const titleId = `dialog-title-${Math.random().toString(36).slice(2, 8)}`;
  const dialog = h("div", {class: `modal${wide ? " wide" : ""}`, role: "dialog",
                           "aria-modal": "true", "aria-labelledby": titleId, testid,
                           tabindex: "-1"},
                   h("h2", {id: titleId, text: title}));
  const backdrop = h("div", {class: "modal-backdrop"}, dialog);
  build(dialog);

  let closed = false;
  const controller = {
    element: dialog,
    close({restore = true} = {}) {
      if (closed) return;
      closed = true;
      document.removeEventListener("focusin", keepFocusInside, true);
      backdrop.remove();
      openDialog = null;
      for (const part of outsideParts()) part.inert = false;
      if (restore) {
        const target = previous && previous.isConnected && previous !== document.body
          ? previous : $("chat-input");
        target?.focus({preventScroll: true});
      }
      bus.emit("modal:closed");
    },
  };

  function keepFocusInside(event) {
    if (!dialog.contains(event.target)) (focusables(dialog)[0] || dialog).focus();
  }

  dialog.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      (onEscape || (() => controller.close()))();
      return;
    }
    if (event.key !== "Tab") return;
    const items = focusables(dialog);
    if (!items.length) {
      event.preventDefault();
      return;
    }
    const first = items[0];
    const last = items[items.length - 1];
    const active = document.activeElement;
    if (event.shiftKey && (active === first || !dialog.contains(active) || active === dialog)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !dialog.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  });
  backdrop.addEventListener("mousedown", (event) => {
    if (event.target === backdrop && onBackdrop) onBackdrop();
  });

  $("modal-root").append(backdrop);
  for (const part of outsideParts()) part.inert = true;
  openDialog = controller;
  const target = (initialFocus && initialFocus(dialog)) || focusables(dialog)[0] || dialog;
  target.focus();
  document.addEventListener("focusin", keepFocusInside, true);
  return controller;
}

/** Ask before something that cannot be undone. Resolves true (OK) or false. */
export function confirmDialog({title, message, detail, okLabel = "Delete", danger = true}) {
  return new Promise((resolve) => {
    let modal = null;
    const finish = (answer) => {
      modal.close();
      resolve(answer);
    };
    modal = openModal({
      testid: "confirm-dialog",
      title,
      onEscape: () => finish(false),
      onBackdrop: () => finish(false),
      initialFocus: (dialog) => dialog.querySelector("[data-testid='confirm-cancel']"),
      build(dialog) {
        if (message) dialog.append(h("p", {class: "modal-text", text: message}));
        if (detail) dialog.append(h("blockquote", {class: "modal-quote", text: detail}));
        dialog.append(h("div", {class: "modal-actions"},
          h("button", {type: "button", class: "btn", testid: "confirm-cancel",
                       on: {click: () => finish(false)}}, "Cancel"),
          h("button", {type: "button", class: `btn ${danger ? "btn-danger" : "btn-primary"}`,
                       testid: "confirm-ok", on: {click: () => finish(true)}}, okLabel)));
      },
    });
  });
}

let shownToast = null; // one at a time: a new toast replaces the one on screen

/**
 * Show a toast, in place of the one shown. action: {label, testid, run(toast), name} (name:
 * the button's accessible name when the label alone would not say what it does). Returns
 * {element, update(text, opts), dismiss()}. It stays while hovered or focused; otherwise it
 * goes after `timeout` ms.
 */
export function toast(text, {action, timeout = 9000, error = false} = {}) {
  const region = $("toasts");
  const textEl = h("span", {class: "toast-text", text});
  const element = h("div", {class: `toast${error ? " is-error" : ""}`, testid: "toast"}, textEl);
  let timer = 0;
  let paused = false;
  const handle = {
    element,
    update(newText, {error: isError = false, keepAction = false, timeout: next = 5000} = {}) {
      textEl.textContent = newText;
      element.classList.toggle("is-error", isError);
      if (!keepAction) element.querySelector(".toast-action")?.remove();
      schedule(next);
    },
    dismiss({focus = $("chat-input")} = {}) {
      clearTimeout(timer);
      const hadFocus = element.contains(document.activeElement);
      element.remove();
      if (shownToast === handle) shownToast = null;
      if (hadFocus) focus?.focus();
    },
  };
  if (action) {
    element.append(h("button", {type: "button", class: "btn toast-action", testid: action.testid,
                                "aria-label": action.name || null,
                                on: {click: () => action.run(handle)}}, action.label));
  }
  element.append(h("button", {type: "button", class: "icon-btn", "aria-label": "Dismiss",
                              title: "Dismiss", on: {click: () => handle.dismiss()}},
                   icon("close")));
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(() => (paused ? schedule(1500) : handle.dismiss()), ms);
  }
  element.addEventListener("mouseenter", () => { paused = true; });
  element.addEventListener("mouseleave", () => { paused = false; });
  element.addEventListener("focusin", () => { paused = true; });
  element.addEventListener("focusout", () => { paused = false; });
  region.append(element);
  // Replaced while focused (a keyboard user on its Undo): the focus moves to the new toast.
  shownToast?.dismiss({focus: element.querySelector("button")});
  shownToast = handle;
  schedule(timeout);
  return handle;
}

const UNDO_MS = 12000; // long enough to reach the toast's Undo with the keyboard

/**
 * A toast with an Undo button. `undo()` does the undoing and returns {message, after}: the
 * toast then says `message` (the button is gone) and `after()` runs — e.g. to move the focus
 * the vanished button had. What `undo()` throws is shown as an error instead. The button is
 * named for what it undoes: `undoes` (e.g. 'deleted “…”' reads "Undo: deleted “…”" to a
 * screen reader), else the toast's text.
 */
export function undoToast(text, undo, undoes = text) {
  return toast(text, {
    timeout: UNDO_MS,
    action: {
      label: "Undo",
      name: `Undo: ${undoes}`,
      testid: "toast-undo",
      async run(handle) {
        try {
          const {message, after} = await undo();  // not `then`: that would make it a thenable
          handle.update(message);
          after?.();
        } catch (error) {
          handle.update(error.message, {error: true});
        }
      },
    },
  });
}

/** Esc inside an inline form runs close(), and goes no further (a dialog, the search field
 * or the conversation drawer would otherwise react to the same key). */
export function closeOnEscape(form, close) {
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    event.stopPropagation();
    close();
  });
}

/** An inline error message (role=alert) with a test id. */
export function errorBox(message, testid, className = "memory-error") {
  return h("div", {class: className, role: "alert", testid}, message);
}

export {announce};
