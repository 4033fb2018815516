// One message's trip: the composer sends it (once the socket is open and the models have
// loaded), the answer streams in token by token, then ends complete, stopped or failed; what
// the turn remembered follows as notes; a request to forget offers its memories under the
// answer, each forgotten only when its button is pressed. One turn at a time.

import {api, del} from "./api.js";
import {connectionProblem, isOpen, send} from "./chat_socket.js";
import {addCutNote, addMessageNote, assistantMessage, clearWelcome, fillAnswer, forgetNote,
        messageFoot, receipt, showForgotten, userMessage} from "./chat_messages.js";
import {adoptConversation, reloadConversation, shownConversation} from "./conversations.js";
import {$, announce, autoGrow, bus, h, truncate} from "./dom.js";
import {outcomeNote} from "./outcomes.js";
import {LIMITS} from "./page_config.js";
import {closeOnEscape, errorBox, toast, undoToast} from "./ui.js";

let log, input, sendButton, stopButton, statusText, queueStatus, hint;

let turn = null; // the message being answered
let tailToken = -1; // view of the last finished turn: where its memory notes belong
let health = "ok";

export function initTurns(initialHealth) {
  log = $("chat-log");
  input = $("chat-input");
  sendButton = $("send-button");
  stopButton = $("stop-button");
  statusText = $("chat-status-text");
  queueStatus = $("queue-status");
  hint = $("chat-hint");
  health = initialHealth;
  bus.on("conversation:shown", (data) => {
    markLastTurn();
    attachToRunningAnswer(data);
  });
}

export function isAnswering() {
  return turn !== null;
}

/** The answer still streaming into this conversation (null: a new one), to show again under
 * its question when the conversation is shown again. */
export function pendingAnswer(conversationId) {
  return turn && turn.conversationId === conversationId ? turn.element : null;
}

/** The models' state from /health: while they load, a message waits. */
export function setHealth(status) {
  health = status;
  updateComposer();
  if (health !== "starting") dispatchTurn();
}

// ---- composing and sending ------------------------------------------------------------

export function updateComposer() {
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
  waiting = waiting || connectionProblem();
  hint.textContent = waiting ||
    "Enter to send · Shift+Enter for a new line · Esc stops an answer";
  hint.classList.toggle("is-waiting", Boolean(waiting));
}

export function submit() {
  const content = input.value.trim();
  if (!content) return;
  if (turn) {
    setStatus("Lumara is still answering. Wait for it, or press Esc to stop it.");
    return;
  }
  if (content.length > LIMITS.messageChars) {
    setStatus(`That message is ${content.length.toLocaleString()} characters; the limit is ` +
              `${LIMITS.messageChars.toLocaleString()}.`);
    return;
  }
  input.value = "";
  autoGrow(input);
  startTurn(content);
}

/** Regenerate the last answer, or put `content` in place of the last message: both leave
 * the log (the server deletes them too) and the turn is done again. */
export function redoLastTurn(redo, content) {
  const shown = shownConversation();
  const last = lastUserMessage();
  if (turn || shown.id === null || !last) return;
  if (redo === "regenerate") content = last.querySelector("[data-testid='message-body']").textContent;
  while (last.nextSibling) last.nextSibling.remove();
  last.remove();
  startTurn(content, redo);
}

// Last messages whose answer was looked for on the server: one look each.
const attachTried = new Set();

/** A conversation whose last message has no answer yet may have one still generating (the
 * page was reloaded mid-answer): follow it, from its start, where it belongs. */
function attachToRunningAnswer(data) {
  const last = data.messages.at(-1);
  if (turn || !last || last.role !== "user" || attachTried.has(last.id)) return;
  attachTried.add(last.id);
  const {element, body} = assistantMessage("streaming");
  log.append(element);
  const textNode = document.createTextNode("");
  body.append(textNode);
  const shown = shownConversation();
  turn = {content: last.content, attach: true, conversationId: data.conversation.id,
          token: shown.token, element, body, textNode, text: "", sent: false, started: false,
          stopping: false, receipt: []};
  updateComposer();
  dispatchTurn();
}

function lastUserMessage() {
  return [...log.querySelectorAll("[data-testid='message'][data-role='user']")].pop() || null;
}

function startTurn(content, redo = null) {
  clearWelcome(log);
  log.append(userMessage(content));
  const {element, body} = assistantMessage("streaming");
  log.append(element);
  const textNode = document.createTextNode("");
  body.append(textNode);
  const shown = shownConversation();
  turn = {content, redo, conversationId: shown.id, token: shown.token, element,
          body, textNode, text: "", sent: false, started: false, stopping: false,
          receipt: []};
  markLastTurn();
  scrollToEnd(true);
  updateComposer();
  dispatchTurn();
}

/** Send the waiting message once the socket is open and the models have loaded. */
export function dispatchTurn() {
  if (!turn || turn.sent) return;
  if (health === "starting") {
    setStatus("Waiting for the models to finish loading…");
    return;
  }
  if (!isOpen()) {
    setStatus("Connecting to Lumara…");
    return;
  }
  const frame = turn.attach ? {type: "attach", conversation_id: turn.conversationId}
                            : {type: "chat", content: turn.content};
  if (!turn.attach && turn.conversationId !== null) frame.conversation_id = turn.conversationId;
  if (turn.redo) frame.redo = turn.redo;
  if (turn.redo === "regenerate") delete frame.content;  // the server's own copy
  if (!send(frame)) {
    setStatus("Connecting to Lumara…");
    return;
  }
  turn.sent = true;
  setStatus("Thinking…");
}

export function stop() {
  if (!turn) return;
  if (!turn.sent) { // never left the page: nothing to stop on the server
    const {element} = turn;
    element.dataset.status = "stopped";
    addMessageNote(element, "Not sent.");
    endTurn();
    setStatus("");
    return;
  }
  turn.stopping = true;
  send({type: "stop"});
  setStatus("Stopping…");
}

/** The socket dropped: an answer on its way is cut off (an unsent message waits on). */
export function connectionLost() {
  if (turn && turn.sent) {
    failTurn("The connection to Lumara dropped, so this answer was cut off. " +
             "Reconnecting…");
  }
}

function endTurn() {
  turn = null;
  showQueue(null);
  updateComposer();
}

export function setStatus(text) {
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

function scrollToEnd(force = false) {
  const distance = log.scrollHeight - log.scrollTop - log.clientHeight;
  if (force || distance < 120) log.scrollTop = log.scrollHeight;
}

// ---- events from the server -----------------------------------------------------------

export function handleEvent(event) {
  switch (event.type) {
    case "conversation":
      // Known before the answer: a reload now comes back to this conversation.
      if (!turn || turn.attach) return;
      turn.conversationId ??= event.conversation_id;
      adoptConversation(event.conversation_id, turn);
      break;
    case "attached":
      if (!turn?.attach) return;
      turn.started = true;
      setStatus("Answering…");
      break;
    case "attach_none":
      // It ended between the page's load and now, or the server restarted: show what it kept.
      if (!turn?.attach) return;
      turn.element.remove();
      endTurn();
      setStatus("");
      reloadConversation();
      break;
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
    case "forget_candidates":
      // None found: the answer says so, no note. In the answer's own element, so the note
      // stays with it if another conversation is shown meanwhile.
      if (!turn || !event.items?.length) return;
      turn.element.querySelector(".bubble").after(forgetNote(event.items, forgetMemory));
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
    case "redo":
      onRedo(event);
      break;
    case "turn_end":
      if (!turn && statusText.textContent === "Remembering…") setStatus("");
      break;
    case "error":
      onError(event);
      break;
    case "memory_saved":
      bus.emit("memory:added", event.memory);
      // Its note under the answer has the Undo; a toast only when that is not on screen.
      if (!note(event.outcome)) savedToast(event.memory);
      break;
    case "memory_suggested":
      bus.emit("suggestion:new", {...event.suggestion, reasons: event.reasons || []});
      note(event.outcome);
      break;
    case "memory_exists":
      note(event.outcome);
      break;
    case "contradiction":
      note(event.outcome);
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
  fillAnswer(t.body, event.html);
  if (!t.text.trim()) {
    t.body.hidden = !event.html;
    addMessageNote(t.element, event.status === "stopped"
      ? "Stopped before Lumara wrote anything." : "No answer.");
  } else if (event.status === "stopped") {
    addMessageNote(t.element, "Stopped.");
  }
  addCutNote(t.element, event.stats);
  t.element.append(messageFoot(t.text, event.stats));
  setStatus(event.status === "stopped" ? "Stopped." : "");
  announce(t.text.trim() ? `Lumara answered: ${truncate(t.text, 400)}` : "Answer stopped.");
  adoptConversation(event.conversation_id, t);
  markLastTurn();
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
  markLastTurn();
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
  const shown = shownConversation();
  if (tailToken === shown.token || shown.id === null) {
    log.append(errorBox(message, "chat-error", "chat-error"));
    scrollToEnd();
  } else {
    toast(message, {error: true});
  }
  announce(`Error: ${message}`);
}

/** An edit took back what the old message saved: to the trash, undoable from the toast. */
function onRedo(event) {
  for (const memory of event.trashed || []) {
    bus.emit("memory:removed", memory.id);
    const what = truncate(memory.content, 80);
    undoToast(`Moved to the trash with your old message: ${what}`, async () => {
      const data = await api("POST", `/api/trash/${memory.id}/restore`);
      bus.emit("memory:added", data.memory);
      return {message: `Remembered again: ${what}`};
    }, `moved to the trash “${what}”`);
  }
}

/** The last turn of the conversation shown gets Edit (its message) and Regenerate (its
 * answer); no other turn has them, and none while an answer streams. */
export function markLastTurn() {
  for (const old of log.querySelectorAll(".redo-action")) old.remove();
  const last = lastUserMessage();
  if (turn || !last || shownConversation().id === null) return;
  last.append(h("div", {class: "message-foot redo-action"},
    h("button", {type: "button", class: "btn-link", testid: "edit-message",
                 "aria-label": "Edit your last message",
                 on: {click: () => editMessage(last)}}, "Edit")));
  const reply = last.nextElementSibling;
  if (reply?.dataset.role === "assistant") {
    const foot = reply.querySelector(".message-foot") ||
      reply.appendChild(h("div", {class: "message-foot"}));
    foot.append(h("button", {type: "button", class: "btn-link redo-action",
                             testid: "regenerate-answer", "aria-label": "Regenerate the answer",
                             on: {click: () => redoLastTurn("regenerate")}}, "Regenerate"));
  }
}

/** The last message as a form: Send redoes the turn with the new words; Esc or Cancel
 * puts the message back as it was. */
function editMessage(message) {
  const body = message.querySelector("[data-testid='message-body']");
  const old = body.textContent;
  const area = h("textarea", {class: "edit-message-input", testid: "edit-message-input",
                              "aria-label": "Edit your message", rows: "2"});
  area.value = old;
  const cancel = () => {
    form.replaceWith(body);
    markLastTurn();
    message.querySelector("[data-testid='edit-message']")?.focus();
  };
  const form = h("form", {class: "edit-message", testid: "edit-message-form",
                          on: {submit: (e) => {
                            e.preventDefault();
                            const content = area.value.trim();
                            if (!content || content.length > LIMITS.messageChars) return;
                            if (content === old) { cancel(); return; }
                            redoLastTurn("edit", content);
                          }}},
    area,
    h("div", {class: "edit-message-actions"},
      h("button", {type: "button", class: "btn btn-quiet btn-small", testid: "edit-cancel",
                   on: {click: cancel}}, "Cancel"),
      h("button", {type: "submit", class: "btn btn-primary btn-small", testid: "edit-send"},
        "Send")));
  closeOnEscape(form, cancel);
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  for (const action of message.querySelectorAll(".redo-action")) action.remove();
  body.replaceWith(form);
  autoGrow(area);
  area.focus();
}

function savedToast(memory) {
  undoToast(`Saved: ${memory.content}`, async () => {
    try {
      await del(`/api/memories/${memory.id}`);
    } catch (error) {
      if (error.status === 404) bus.emit("memory:removed", memory.id);  // gone already
      throw error;
    }
    bus.emit("memory:removed", memory.id);
    return {message: `Removed: ${memory.content}`};
  }, `saved “${truncate(memory.content, 80)}”`);
}

/** The Forget button of a forget note: a soft delete, undone from the toast. */
async function forgetMemory(memory, row) {
  const button = row.querySelector("[data-testid='forget-button']");
  button.disabled = true;  // one request per press
  row.querySelector(".chat-error")?.remove();
  let undo = null;
  try {
    undo = (await del(`/api/memories/${memory.id}`)).undo;
  } catch (error) {
    if (error.status !== 404) {  // 404: forgotten already (from the memory list, say)
      button.disabled = false;
      row.append(errorBox(`Could not forget it: ${error.message}`, "forget-error",
                          "chat-error"));
      button.focus();
      return;
    }
  }
  bus.emit("memory:removed", memory.id);
  showForgotten(row, true);
  row.querySelector("[data-testid='forget-done']").focus();
  const what = truncate(memory.content, 120);
  if (!undo) {
    announce(`Already forgotten: ${what}`);
    return;
  }
  undoToast(`Forgotten: ${what}`, async () => {
    const data = await api(undo.method, undo.url);
    bus.emit("memory:added", data.memory);
    showForgotten(row, false);
    return {message: `Remembered again: ${what}`,
            after: () => { if (row.isConnected) button.focus(); }};
  }, `forgotten “${what}”`);
}

/** What the turn did besides answering, after its answer (and kept with it: a reload shows
 * it again), shown only while the conversation it belongs to is. */
function note(outcome) {
  if (!outcome || tailToken !== shownConversation().token) return false;
  log.append(outcomeNote(outcome));
  scrollToEnd();
  return true;
}
