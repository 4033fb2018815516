// The chat pane, wired together: the composer's keys and buttons drive the turn being
// answered (turns.js), the websocket (chat_socket.js) feeds it the server's events, and the
// drawer (conversations.js) switches what the log shows; the messages themselves are built
// in chat_messages.js.

import {connectChat, reconnectNow} from "./chat_socket.js";
import {initConversations, restoreConversation} from "./conversations.js";
import {$, autoGrow, bus} from "./dom.js";
import {connectionLost, dispatchTurn, handleEvent, initTurns, isAnswering, pendingAnswer,
        setHealth, setStatus, stop, submit, updateComposer} from "./turns.js";
import {initOutcomes} from "./outcomes.js";
import {isModalOpen} from "./ui.js";

export function initChat(initialHealth) {
  const input = $("chat-input");
  initTurns(initialHealth?.status || "ok");
  initOutcomes();
  initConversations({leave: () => setStatus(""), pendingAnswer});

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && isAnswering()) {
      event.preventDefault();
      stop();
    }
  });
  input.addEventListener("input", () => autoGrow(input));
  $("stop-button").addEventListener("click", () => {
    stop();
    input.focus();
  });
  document.addEventListener("keydown", (event) => {
    // Esc anywhere outside a field stops the answer (fields use Esc for themselves).
    if (event.key !== "Escape" || !isAnswering() || isModalOpen() || event.defaultPrevented) {
      return;
    }
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    stop();
  });
  $("chat-log").addEventListener("click", onLogClick);

  bus.on("health", (report) => setHealth(report.status));
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });

  connectChat({
    open() {
      updateComposer();
      dispatchTurn();
    },
    event: handleEvent,
    close() {
      bus.emit("connection:lost");
      connectionLost();
    },
    change: updateComposer,
  });
  updateComposer();
  restoreConversation();
}

/** A memory link in the log (a receipt's, a note's "Show") opens it in the memory list. */
function onLogClick(event) {
  const link = event.target.closest("a[data-memory-id]");
  if (!link) return;
  event.preventDefault();
  bus.emit("memory:show", Number(link.dataset.memoryId));
}
