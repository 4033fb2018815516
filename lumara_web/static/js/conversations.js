// The conversations: the list in the drawer (load more, rename, delete) and which one the
// chat log shows. Showing another conversation changes the view token, so an answer or a
// load that arrives for a conversation no longer shown stays out of the log.

import {del, get, patch} from "./api.js";
import {historyItems, showWelcome} from "./chat_messages.js";
import {$, ago, announce, bus, h, icon, recall, store, truncate} from "./dom.js";
import {LIMITS} from "./page_config.js";
import {confirmDialog, errorBox} from "./ui.js";

const STORAGE_KEY = "lumara.conversation";

let log, titleEl, view;

let current = null; // the conversation shown: {id, title, …}, or null for a new one
let viewToken = 0; // changes whenever another conversation is shown
let conversations = [];
let conversationTotal = 0;

/**
 * `hooks` tie the log to the turn being answered: leave() as the log turns to another
 * conversation; pendingAnswer(id) → the element of an answer still streaming into
 * conversation `id` (null: a new conversation), or null.
 */
export function initConversations(hooks) {
  view = hooks;
  log = $("chat-log");
  titleEl = $("chat-title");
  $("new-conversation").addEventListener("click", () => {
    newConversation();
    closeDrawer();
    $("chat-input").focus();
  });
  $("conversations-more").addEventListener("click", () => loadConversations({more: true}));
  // A backup restored: the list and the conversation shown are as they were then.
  bus.on("database:replaced", () => {
    loadConversations();
    reloadConversation();
  });
}

/** {id, token}: the conversation shown (id null for a new one) and the view's token now. */
export function shownConversation() {
  return {id: current ? current.id : null, token: viewToken};
}

/** List the conversations and show the one open last time, if it still exists. */
export async function restoreConversation() {
  const saved = Number(recall(STORAGE_KEY)) || null;
  showWelcome(log);
  await loadConversations();
  if (saved === null) return;
  // Only ask for a conversation we know exists (a 404 would be noise in the console).
  if (conversations.some((c) => c.id === saved) || conversations.length < conversationTotal) {
    openConversation(saved, {quiet: true});
  } else {
    store(STORAGE_KEY, null);
  }
}

/** Show the current conversation again, as the server now holds it. */
export function reloadConversation() {
  if (current) openConversation(current.id, {quiet: true});
}

function setCurrent(conversation) {
  current = conversation;
  store(STORAGE_KEY, conversation ? conversation.id : null);
  titleEl.textContent = conversation ? conversation.title : "New conversation";
  document.title = conversation ? `${conversation.title} · Lumara` : "Lumara";
  renderConversations();
}

function newConversation() {
  viewToken += 1;
  setCurrent(null);
  log.replaceChildren();
  view.leave();
  const pending = view.pendingAnswer(null);
  if (pending) log.append(pending);
  showWelcome(log);
}

async function openConversation(id, {quiet = false} = {}) {
  const token = ++viewToken;
  const known = conversations.find((c) => c.id === id);
  setCurrent(known || {id, title: "Loading…"});
  log.replaceChildren(h("p", {class: "list-empty", text: "Loading the conversation…"}));
  view.leave();
  let data;
  try {
    data = await get(`/api/conversations/${id}`);
  } catch (error) {
    if (token !== viewToken) return;
    log.replaceChildren();
    if (error.status === 404) {
      setCurrent(null);
      if (!quiet) log.append(errorBox("That conversation no longer exists.", "chat-error", "chat-error"));
      showWelcome(log);
      loadConversations();
    } else {
      log.append(errorBox(`Could not load the conversation: ${error.message}`, "chat-error",
                          "chat-error"));
    }
    return;
  }
  if (token !== viewToken) return;
  setCurrent(data.conversation);
  log.replaceChildren(...data.messages.flatMap(historyItems));
  // An answer still streaming into this conversation goes back under its question.
  const pending = view.pendingAnswer(id);
  if (pending) log.append(pending);
  if (!data.messages.length) showWelcome(log);
  bus.emit("conversation:shown", data);
  log.scrollTop = log.scrollHeight;
}

/** The conversation a turn ({token, content}) went to: show it as current (if its view is
 * still on screen) and relist. */
export function adoptConversation(conversationId, turn) {
  if (conversationId != null && turn.token === viewToken &&
      (!current || current.id !== conversationId)) {
    setCurrent({id: conversationId,
                title: conversations.find((c) => c.id === conversationId)?.title
                  || truncate(turn.content, 60)});
  }
  loadConversations();
}

// ---- the list -------------------------------------------------------------------------

async function loadConversations({more = false} = {}) {
  const offset = more ? conversations.length : 0;
  const limit = more ? 50 : Math.min(200, Math.max(50, conversations.length));
  try {
    const data = await get(`/api/conversations?limit=${limit}&offset=${offset}`);
    conversations = more ? conversations.concat(data.items) : data.items;
    conversationTotal = data.total;
    $("conversation-error").hidden = true;
  } catch (error) {
    showConversationError(`Could not list conversations: ${error.message}`);
  }
  renderConversations();
}

function showConversationError(message) {
  const box = $("conversation-error");
  box.textContent = message;
  box.className = "pane-error chat-error";
  box.hidden = false;
}

function renderConversations() {
  const list = $("conversation-list");
  if (!list) return;
  if (list.querySelector(".conv-rename-input")) return; // don't pull a field from under the typist
  const shown = shownTitles(conversations);
  const items = conversations.map((conversation) => conversationItem(conversation,
                                                                     shown.get(conversation.id)));
  if (!items.length) {
    items.push(h("li", {class: "conv-empty", text: "No conversations yet."}));
  }
  list.replaceChildren(...items);
  $("conversations-more").hidden = conversations.length >= conversationTotal;
}

/** Titles as listed: a title two conversations share gets a number after the first one
 * (oldest first) — "Trip plans", "Trip plans (2)" — so that the list tells them apart. */
function shownTitles(items) {
  const seen = new Map();
  const shown = new Map();
  for (const conversation of [...items].sort((a, b) => a.id - b.id)) {
    const n = (seen.get(conversation.title) || 0) + 1;
    seen.set(conversation.title, n);
    shown.set(conversation.id, n === 1 ? conversation.title : `${conversation.title} (${n})`);
  }
  return shown;
}

function conversationItem(conversation, title = conversation.title) {
  const isCurrent = current && current.id === conversation.id;
  const count = conversation.message_count;
  const meta = [`${count} ${count === 1 ? "message" : "messages"}`, ago(conversation.updated_at)]
    .filter(Boolean).join(" · ");
  const item = h("li", {class: `conv-item${isCurrent ? " is-current" : ""}`,
                        testid: "conversation-item", dataset: {id: String(conversation.id)}});
  const open = h("button", {type: "button", class: "conv-open",
                            "aria-current": isCurrent ? "true" : null,
                            on: {click: () => {
                              closeDrawer();
                              openConversation(conversation.id);
                            }}},
    h("span", {class: "conv-title", text: title}),
    h("span", {class: "conv-meta", text: meta}));
  const rename = h("button", {type: "button", class: "icon-btn", testid: "conversation-rename",
                              "aria-label": `Rename “${truncate(title, 40)}”`,
                              title: "Rename",
                              on: {click: () => startRename(item, conversation)}},
    icon("edit"));
  const remove = h("button", {type: "button", class: "icon-btn", testid: "conversation-delete",
                              "aria-label": `Delete “${truncate(title, 40)}”`,
                              title: "Delete",
                              on: {click: () => deleteConversation(conversation)}},
    icon("trash"));
  item.append(open, h("div", {class: "conv-actions"}, rename, remove));
  return item;
}

function startRename(item, conversation) {
  const field = h("input", {type: "text", class: "conv-rename-input",
                            maxlength: String(LIMITS.titleChars),
                            "aria-label": "Conversation title", value: conversation.title});
  const open = item.querySelector(".conv-open");
  const actions = item.querySelector(".conv-actions");
  open.hidden = true;
  actions.hidden = true;
  item.prepend(field);
  field.focus();
  field.select();
  let finished = false;

  const finish = async (save) => {
    if (finished) return;
    finished = true;
    const title = field.value.trim();
    if (save && title && title !== conversation.title) {
      try {
        const data = await patch(`/api/conversations/${conversation.id}`, {title});
        Object.assign(conversation, data.conversation);
        if (current && current.id === conversation.id) setCurrent(data.conversation);
        $("conversation-error").hidden = true;
        announce("Conversation renamed.");
      } catch (error) {
        showConversationError(`Could not rename: ${error.message}`);
      }
    }
    field.remove();
    renderConversations();
    $("conversation-list")
      .querySelector(`[data-id="${conversation.id}"] [data-testid="conversation-rename"]`)
      ?.focus();
  };
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      finish(true);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      finish(false);
    }
  });
  field.addEventListener("blur", () => finish(true));
}

async function deleteConversation(conversation) {
  const yes = await confirmDialog({
    title: "Delete this conversation?",
    message: "Its messages are deleted for good. Memories made from it stay.",
    detail: conversation.title,
    okLabel: "Delete conversation",
  });
  if (!yes) return;
  try {
    await del(`/api/conversations/${conversation.id}`);
  } catch (error) {
    if (error.status !== 404) {
      showConversationError(`Could not delete: ${error.message}`);
      return;
    }
  }
  conversations = conversations.filter((c) => c.id !== conversation.id);
  conversationTotal = Math.max(0, conversationTotal - 1);
  if (current && current.id === conversation.id) newConversation();
  else renderConversations();
  announce("Conversation deleted.");
  $("new-conversation").focus();
  loadConversations();
}

function closeDrawer() {
  bus.emit("drawer:close");
}
