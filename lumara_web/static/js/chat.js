// The chat: one websocket to /ws/chat, streamed answers with their receipts, and the list of
// conversations. Model text is only ever set as textContent while streaming; the one HTML we
// insert is the server's sanitized `html` of a finished answer.

import {del, get, patch} from "./api.js";
import {ago, announce, autoGrow, bus, copyButton, h, icon, percent, recall, store,
        truncate} from "./dom.js";
import {confirmDialog, errorBox, isModalOpen, toast, undoToast} from "./ui.js";

const STORAGE_KEY = "lumara.conversation";
const MAX_MESSAGE = 8000;

const $ = (id) => document.getElementById(id);
let log, input, sendButton, stopButton, statusText, queueStatus, hint, titleEl;

let current = null; // the conversation shown: {id, title, …}, or null for a new one
let conversations = [];
let conversationTotal = 0;
let viewToken = 0; // changes whenever another conversation is shown
let turn = null; // the message being answered
let tailToken = -1; // view of the last finished turn: where its memory notes belong

let socket = null;
let socketState = "connecting"; // connecting | open | closed
let reconnectAttempts = 0;
let reconnectTimer = 0;
let reconnectAt = 0;
let health = "ok";

export function initChat(initialHealth) {
  log = $("chat-log");
  input = $("chat-input");
  sendButton = $("send-button");
  stopButton = $("stop-button");
  statusText = $("chat-status-text");
  queueStatus = $("queue-status");
  hint = $("chat-hint");
  titleEl = $("chat-title");
  health = initialHealth?.status || "ok";

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && turn) {
      event.preventDefault();
      stop();
    }
  });
  input.addEventListener("input", () => autoGrow(input));
  stopButton.addEventListener("click", () => {
    stop();
    input.focus();
  });
  document.addEventListener("keydown", (event) => {
    // Esc anywhere outside a field stops the answer (fields use Esc for themselves).
    if (event.key !== "Escape" || !turn || isModalOpen() || event.defaultPrevented) return;
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    stop();
  });
  $("new-conversation").addEventListener("click", () => {
    newConversation();
    closeDrawer();
    input.focus();
  });
  $("conversations-more").addEventListener("click", () => loadConversations({more: true}));
  log.addEventListener("click", onLogClick);

  bus.on("health", (report) => {
    health = report.status;
    updateComposer();
    if (health !== "starting") dispatchTurn();
  });
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });

  connect();
  updateComposer();
  startUp();
}

async function startUp() {
  const saved = Number(recall(STORAGE_KEY)) || null;
  showWelcome();
  await loadConversations();
  if (saved === null) return;
  // Only ask for a conversation we know exists (a 404 would be noise in the console).
  if (conversations.some((c) => c.id === saved) || conversations.length < conversationTotal) {
    openConversation(saved, {quiet: true});
  } else {
    store(STORAGE_KEY, null);
  }
}

// ---- the websocket --------------------------------------------------------------------

function connect() {
  clearTimeout(reconnectTimer);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let ws;
  try {
    ws = new WebSocket(`${scheme}//${location.host}/ws/chat`);
  } catch {
    scheduleReconnect();
    return;
  }
  socket = ws;
  socketState = "connecting";
  updateComposer();
  ws.addEventListener("open", () => {
    if (socket !== ws) return;
    socketState = "open";
    reconnectAttempts = 0;
    updateComposer();
    dispatchTurn();
  });
  ws.addEventListener("message", (message) => {
    if (socket !== ws) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    handleEvent(event);
  });
  ws.addEventListener("close", () => {
    if (socket !== ws) return;
    socket = null;
    socketState = "closed";
    bus.emit("connection:lost");
    if (turn && turn.sent) {
      failTurn("The connection to Lumara dropped, so this answer was cut off. " +
               "Reconnecting…");
    }
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  socketState = "closed";
  const delay = Math.min(15000, 500 * 2 ** reconnectAttempts) * (0.8 + Math.random() * 0.4);
  reconnectAttempts += 1;
  reconnectAt = Date.now() + delay;
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, delay);
  updateComposer();
}

function reconnectNow() {
  if (socketState === "closed") {
    reconnectAttempts = 0;
    connect();
  }
}

function send(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

// ---- composing and sending ------------------------------------------------------------

function updateComposer() {
  const streaming = Boolean(turn);
  sendButton.hidden = streaming;
  stopButton.hidden = !streaming;
  let waiting = "";
  if (health === "starting") {
    waiting = "Lumara is loading its models. You can type now: your message goes as soon as " +
              "they are ready.";
    input.placeholder = "Waiting for the models to load…";
  } else {
    input.placeholder = "Message Lumara…";
  }
  if (!waiting && socketState === "connecting" && reconnectAttempts > 0) {
    waiting = "Reconnecting to Lumara…";
  } else if (!waiting && socketState === "closed") {
    const seconds = Math.max(1, Math.round((reconnectAt - Date.now()) / 1000));
    waiting = `Lost the connection to Lumara. Trying again in ${seconds} s…`;
  }
  hint.textContent = waiting ||
    "Enter to send · Shift+Enter for a new line · Esc stops an answer";
  hint.classList.toggle("is-waiting", Boolean(waiting));
}

function submit() {
  const content = input.value.trim();
  if (!content) return;
  if (turn) {
    setStatus("Lumara is still answering. Wait for it, or press Esc to stop it.");
    return;
  }
  if (content.length > MAX_MESSAGE) {
    setStatus(`That message is ${content.length.toLocaleString()} characters; the limit is ` +
              `${MAX_MESSAGE.toLocaleString()}.`);
    return;
  }
  input.value = "";
  autoGrow(input);
  clearWelcome();
  log.append(userMessage(content));
  const {element, body} = assistantMessage("streaming");
  log.append(element);
  const textNode = document.createTextNode("");
  body.append(textNode);
  turn = {content, conversationId: current ? current.id : null, token: viewToken, element,
          body, textNode, text: "", sent: false, started: false, stopping: false,
          receipt: []};
  scrollToEnd(true);
  updateComposer();
  dispatchTurn();
}

/** Send the waiting message once the socket is open and the models have loaded. */
function dispatchTurn() {
  if (!turn || turn.sent) return;
  if (health === "starting") {
    setStatus("Waiting for the models to finish loading…");
    return;
  }
  if (socketState !== "open") {
    setStatus("Connecting to Lumara…");
    return;
  }
  const frame = {type: "chat", content: turn.content};
  if (turn.conversationId !== null) frame.conversation_id = turn.conversationId;
  if (!send(frame)) {
    setStatus("Connecting to Lumara…");
    return;
  }
  turn.sent = true;
  setStatus("Thinking…");
}

function stop() {
  if (!turn) return;
  if (!turn.sent) { // never left the page: nothing to stop on the server
    const {element} = turn;
    element.dataset.status = "stopped";
    element.querySelector(".bubble").append(
      h("p", {class: "message-note", text: "Not sent."}));
    endTurn();
    setStatus("");
    return;
  }
  turn.stopping = true;
  send({type: "stop"});
  setStatus("Stopping…");
}

function endTurn() {
  turn = null;
  showQueue(null);
  updateComposer();
}

function setStatus(text) {
  statusText.textContent = text;
}

function showQueue(event) {
  if (!event) {
    queueStatus.hidden = true;
    queueStatus.textContent = "";
    return;
  }
  queueStatus.textContent = `Queued, position ${event.position}` +
    (event.model_loading ? " (the chat model is still loading)" : "");
  queueStatus.hidden = false;
}

// ---- events from the server -----------------------------------------------------------

function handleEvent(event) {
  switch (event.type) {
    case "queued":
      if (!turn) return;
      turn.started = true;
      showQueue(event);
      setStatus("");
      break;
    case "memories":
      if (!turn) return;
      turn.started = true;
      showQueue(null);
      turn.receipt = event.items || [];
      if (turn.receipt.length) {
        turn.element.querySelector(".bubble").after(receipt(turn.receipt));
      }
      setStatus(turn.stopping ? "Stopping…" : "Answering…");
      break;
    case "token":
      if (!turn) return;
      turn.started = true;
      showQueue(null);
      turn.text += event.text;
      turn.textNode.appendData(event.text);
      scrollToEnd();
      break;
    case "done":
      if (turn) finishTurn(event);
      if (event.status === "complete") setStatus("Remembering…");
      break;
    case "turn_end":
      if (!turn && statusText.textContent === "Remembering…") setStatus("");
      break;
    case "error":
      onError(event);
      break;
    case "memory_saved":
      onMemorySaved(event);
      break;
    case "memory_suggested":
      bus.emit("suggestion:new", {...event.suggestion, reasons: event.reasons || []});
      note("Suggested for your review:", event.suggestion.content, {review: true});
      break;
    case "memory_exists":
      note("Already remembered:", event.existing?.memory?.content || event.proposal?.content,
           {memoryId: event.existing?.memory?.id});
      break;
    case "contradiction":
      bus.emit("contradiction:new", {
        ...event.contradiction,
        memory: event.memory,
        existing_memory: event.existing_memory,
        explanation: event.contradiction?.explanation || event.verdict?.explanation || "",
      });
      break;
    default:
      break;
  }
}

function finishTurn(event) {
  const t = turn;
  endTurn();
  tailToken = t.token;
  t.element.dataset.status = event.status || "complete";
  if (event.message_id) t.element.dataset.messageId = event.message_id;
  t.body.innerHTML = event.html || ""; // sanitized Markdown from the server: see rendering.py
  enhanceCode(t.body);
  if (!t.text.trim()) {
    t.body.hidden = !event.html;
    t.element.querySelector(".bubble").append(
      h("p", {class: "message-note", text: event.status === "stopped"
        ? "Stopped before Lumara wrote anything." : "No answer."}));
  } else if (event.status === "stopped") {
    t.element.querySelector(".bubble").append(h("p", {class: "message-note", text: "Stopped."}));
  }
  t.element.append(messageFoot(t.text, event.stats));
  setStatus(event.status === "stopped" ? "Stopped." : "");
  announce(t.text.trim() ? `Lumara answered: ${truncate(t.text, 400)}` : "Answer stopped.");
  adoptConversation(event.conversation_id, t);
  scrollToEnd();
}

function failTurn(message, conversationId) {
  const t = turn;
  endTurn();
  t.element.dataset.status = "error";
  if (!t.text) t.body.hidden = true;
  t.element.querySelector(".bubble").append(
    errorBox(message, "chat-error", "chat-error"));
  setStatus("");
  announce(`Error: ${message}`);
  adoptConversation(conversationId, t);
  scrollToEnd();
}

function onError(event) {
  const message = event.message || "Something went wrong.";
  // An error with phase "remember" is about the memory extraction after an earlier answer.
  const belongsToTurn = turn && turn.sent && event.phase !== "remember";
  if (belongsToTurn) {
    failTurn(message, event.conversation_id);
    return;
  }
  if (tailToken === viewToken || !current) {
    log.append(errorBox(message, "chat-error", "chat-error"));
    scrollToEnd();
  } else {
    toast(message, {error: true});
  }
  announce(`Error: ${message}`);
}

/** The conversation a turn went to: show it as current (if still on screen) and relist. */
function adoptConversation(conversationId, t) {
  if (conversationId != null && t.token === viewToken &&
      (!current || current.id !== conversationId)) {
    setCurrent({id: conversationId,
                title: conversations.find((c) => c.id === conversationId)?.title
                  || truncate(t.content, 60)});
  }
  loadConversations();
}

function onMemorySaved(event) {
  const memory = event.memory;
  bus.emit("memory:added", memory);
  undoToast(`Saved: ${memory.content}`, async () => {
    try {
      await del(`/api/memories/${memory.id}`);
    } catch (error) {
      if (error.status === 404) bus.emit("memory:removed", memory.id);  // gone already
      throw error;
    }
    bus.emit("memory:removed", memory.id);
    return {message: `Removed: ${memory.content}`};
  });
}

/** A small line in the chat after an answer (only in the conversation it belongs to). */
function note(label, content, {memoryId, review = false} = {}) {
  if (tailToken !== viewToken) return;
  const parts = [h("span", {text: label}), h("span", {class: "note-content", text: `“${content}”`})];
  if (memoryId) {
    parts.push(h("a", {href: `#memory-${memoryId}`, class: "memory-link",
                       dataset: {memoryId: String(memoryId)}}, "Show"));
  }
  if (review) {
    parts.push(h("button", {type: "button", class: "btn-link",
                            on: {click: () => bus.emit("review:show")}}, "Review"));
  }
  log.append(h("p", {class: "chat-note"}, parts));
  scrollToEnd();
}

// ---- messages -------------------------------------------------------------------------

function userMessage(content) {
  return h("article", {class: "message", testid: "message", dataset: {role: "user",
                                                                         status: "complete"},
                       "aria-label": "You"},
    h("div", {class: "message-body", testid: "message-body", text: content}));
}

function assistantMessage(status) {
  const body = h("div", {class: "message-body", testid: "message-body"});
  const element = h("article", {class: "message", testid: "message",
                                dataset: {role: "assistant", status}, "aria-label": "Lumara"},
    h("div", {class: "message-who"}, "Lumara"),
    h("div", {class: "bubble"}, body));
  return {element, body};
}

function historyMessage(message) {
  if (message.role === "user") return userMessage(message.content);
  const {element, body} = assistantMessage(message.status || "complete");
  body.innerHTML = message.html || ""; // sanitized Markdown from the server
  enhanceCode(body);
  const bubble = element.querySelector(".bubble");
  if (message.status === "stopped") {
    bubble.append(h("p", {class: "message-note", text: message.content.trim()
      ? "Stopped." : "Stopped before Lumara wrote anything."}));
  } else if (message.status === "error") {
    bubble.append(h("p", {class: "message-note", text: "This answer failed part-way."}));
  }
  if (message.memories && message.memories.length) bubble.after(receipt(message.memories));
  element.append(messageFoot(message.content, message.stats, message.created_at));
  return element;
}

function messageFoot(text, stats, createdAt) {
  const parts = [];
  if (text && text.trim()) {
    parts.push(copyButton({label: "Copy answer", testid: "copy-answer",
                           getText: () => text}));
  }
  const details = [];
  let title = null;
  if (stats && stats.source === "model" && stats.total_ms != null) {
    details.push(`answered in ${(stats.total_ms / 1000).toFixed(1)} s`);
    title = [`${stats.tokens} tokens`,
             stats.tokens_per_s ? `${stats.tokens_per_s} tokens/s` : null,
             stats.ttft_ms != null ? `first token after ${(stats.ttft_ms / 1000).toFixed(1)} s`
                                   : null].filter(Boolean).join(" · ");
  }
  if (createdAt) details.push(ago(createdAt));
  if (details.length) {
    parts.push(h("span", {class: "message-stats", title, text: details.join(" · ")}));
  }
  return h("div", {class: "message-foot"}, parts);
}

/** The receipt: which memories an answer stands on, each a link into the memory list. */
function receipt(items) {
  const count = items.length;
  return h("div", {class: "receipt", testid: "receipt"},
    h("p", {class: "receipt-title", text: `From ${count} ${count === 1 ? "memory" : "memories"}`}),
    h("ol", {}, items.map((item) => h("li", {},
      h("a", {class: "receipt-item", testid: "receipt-item", href: `#memory-${item.id}`,
              dataset: {memoryId: String(item.id)},
              title: `${item.content} (similarity ${percent(item.similarity)})`},
        h("span", {class: `dot type-${item.type}`, "aria-hidden": "true"}),
        h("span", {class: "receipt-text", text: item.content}),
        h("span", {class: "receipt-sim"},
          h("span", {class: "visually-hidden", text: "similarity "}), percent(item.similarity)))))));
}

function onLogClick(event) {
  const link = event.target.closest("a[data-memory-id]");
  if (!link) return;
  event.preventDefault();
  bus.emit("memory:show", Number(link.dataset.memoryId));
}

/** Code blocks get a copy button of their own. */
function enhanceCode(body) {
  for (const pre of body.querySelectorAll("pre")) {
    const wrapper = h("div", {class: "code-block"});
    pre.replaceWith(wrapper);
    wrapper.append(pre, copyButton({label: "Copy code", testid: "copy-code",
                                    className: "icon-btn copy-code",
                                    getText: () => (pre.querySelector("code") || pre).textContent}));
  }
}

function scrollToEnd(force = false) {
  const distance = log.scrollHeight - log.scrollTop - log.clientHeight;
  if (force || distance < 120) log.scrollTop = log.scrollHeight;
}

function showWelcome() {
  if (log.querySelector(".message, .welcome")) return;
  const examples = ["My sister Ana lives in Lisbon.", "Where does my sister live?",
                    "I make cold brew by steeping coffee for 16 hours."];
  log.append(h("div", {class: "welcome"},
    h("h3", {text: "What's on your mind?"}),
    h("p", {text: "Tell Lumara something worth keeping and it becomes a memory. Ask a " +
                  "question and it answers from your memories, showing which ones it used."}),
    h("div", {class: "examples"}, examples.map((text) =>
      h("button", {type: "button", class: "example", on: {click: () => {
        input.value = text;
        autoGrow(input);
        input.focus();
      }}}, text)))));
}

function clearWelcome() {
  log.querySelector(".welcome")?.remove();
}

// ---- conversations --------------------------------------------------------------------

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
  setStatus("");
  if (turn && turn.conversationId === null) log.append(turn.element);
  showWelcome();
}

async function openConversation(id, {quiet = false} = {}) {
  const token = ++viewToken;
  const known = conversations.find((c) => c.id === id);
  setCurrent(known || {id, title: "Loading…"});
  log.replaceChildren(h("p", {class: "list-empty", text: "Loading the conversation…"}));
  setStatus("");
  let data;
  try {
    data = await get(`/api/conversations/${id}`);
  } catch (error) {
    if (token !== viewToken) return;
    log.replaceChildren();
    if (error.status === 404) {
      setCurrent(null);
      if (!quiet) log.append(errorBox("That conversation no longer exists.", "chat-error", "chat-error"));
      showWelcome();
      loadConversations();
    } else {
      log.append(errorBox(`Could not load the conversation: ${error.message}`, "chat-error",
                          "chat-error"));
    }
    return;
  }
  if (token !== viewToken) return;
  setCurrent(data.conversation);
  log.replaceChildren(...data.messages.map(historyMessage));
  // An answer still streaming into this conversation goes back under its question.
  if (turn && turn.conversationId === id) log.append(turn.element);
  if (!data.messages.length) showWelcome();
  log.scrollTop = log.scrollHeight;
}

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
  const items = conversations.map((conversation) => conversationItem(conversation));
  if (!items.length) {
    items.push(h("li", {class: "conv-empty", text: "No conversations yet."}));
  }
  list.replaceChildren(...items);
  $("conversations-more").hidden = conversations.length >= conversationTotal;
}

function conversationItem(conversation) {
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
    h("span", {class: "conv-title", text: conversation.title}),
    h("span", {class: "conv-meta", text: meta}));
  const rename = h("button", {type: "button", class: "icon-btn", testid: "conversation-rename",
                              "aria-label": `Rename “${truncate(conversation.title, 40)}”`,
                              title: "Rename",
                              on: {click: () => startRename(item, conversation)}},
    icon("edit"));
  const remove = h("button", {type: "button", class: "icon-btn", testid: "conversation-delete",
                              "aria-label": `Delete “${truncate(conversation.title, 40)}”`,
                              title: "Delete",
                              on: {click: () => deleteConversation(conversation, remove)}},
    icon("trash"));
  item.append(open, h("div", {class: "conv-actions"}, rename, remove));
  return item;
}

function startRename(item, conversation) {
  const field = h("input", {type: "text", class: "conv-rename-input", maxlength: "200",
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
