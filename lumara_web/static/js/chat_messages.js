// What the chat log is made of: a question, an answer (streaming, finished or from history)
// with its receipt and foot, a note under an answer, and the welcome. Elements only: no state.
// Model text is only ever set as textContent; the one HTML inserted is the server's sanitized
// `html` of a finished answer (chat/rendering.py).

import {$, ago, autoGrow, copyButton, h, percent} from "./dom.js";
import {outcomeNote} from "./outcomes.js";

export function userMessage(content) {
  return h("article", {class: "message", testid: "message", dataset: {role: "user",
                                                                         status: "complete"},
                       "aria-label": "You"},
    h("div", {class: "message-body", testid: "message-body", text: content}));
}

/** An answer's frame: {element, body}; the text goes into `body`. */
export function assistantMessage(status) {
  const body = h("div", {class: "message-body", testid: "message-body"});
  const element = h("article", {class: "message", testid: "message",
                                dataset: {role: "assistant", status}, "aria-label": "Lumara"},
    h("div", {class: "message-who"}, "Lumara"),
    h("div", {class: "bubble"}, body));
  return {element, body};
}

/** A line in an answer's bubble saying how it ended ("Stopped.", "No answer."). */
export function addMessageNote(element, text) {
  element.querySelector(".bubble").append(h("p", {class: "message-note", text}));
}

/** Under an answer that did not end by itself, why it was cut (stats.cut, from the server). */
export function addCutNote(element, stats) {
  const why = {length: "Cut short: the answer reached its length limit.",
               repetition: "Cut short: the answer began repeating itself."}[stats?.cut];
  if (why) addMessageNote(element, why);
}

/** An answer as it ended: the server's sanitized HTML in `body`, code blocks given copy buttons. */
export function fillAnswer(body, html) {
  body.innerHTML = html || ""; // sanitized Markdown from the server: see rendering.py
  enhanceCode(body);
}

/** A stored message as the log shows it: the message, then what its turn did besides
 * answering. */
export function historyItems(message) {
  return [historyMessage(message), ...(message.outcomes || []).map(outcomeNote)];
}

export function historyMessage(message) {
  if (message.role === "user") return userMessage(message.content);
  const {element, body} = assistantMessage(message.status || "complete");
  fillAnswer(body, message.html);
  if (message.status === "stopped") {
    addMessageNote(element, message.content.trim()
      ? "Stopped." : "Stopped before Lumara wrote anything.");
  } else if (message.status === "error") {
    addMessageNote(element, "This answer failed part-way.");
  }
  addCutNote(element, message.stats);
  if (message.memories && message.memories.length) {
    element.querySelector(".bubble").after(receipt(message.memories));
  }
  element.append(messageFoot(message.content, message.stats, message.created_at));
  return element;
}

/** Under an answer: its copy button, how long it took, and when (for history). */
export function messageFoot(text, stats, createdAt) {
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
export function receipt(items) {
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

/** Under the answer to a request to forget: the memories it may mean, each a link into the
 * memory list with a Forget button that runs `forget(memory, row)`. Nothing is deleted
 * before a button is pressed. */
export function forgetNote(memories, forget) {
  const count = memories.length;
  return h("div", {class: "receipt forget-note", testid: "forget-note"},
    h("p", {class: "receipt-title",
            text: count === 1 ? "Forget this memory?" : `Which of these ${count} to forget?`}),
    h("ul", {}, memories.map((memory) => {
      const row = h("li", {class: "forget-item", testid: "forget-item",
                           dataset: {memoryId: String(memory.id), state: "offered"}});
      row.append(
        h("a", {class: "receipt-item", testid: "forget-link", href: `#memory-${memory.id}`,
                dataset: {memoryId: String(memory.id)}},
          h("span", {class: `dot type-${memory.type}`, "aria-hidden": "true"}),
          h("span", {class: "receipt-text", text: memory.content})),
        // Takes the focus from the vanished button, so the keyboard keeps its place.
        h("span", {class: "forget-done", testid: "forget-done", tabindex: "-1", hidden: true,
                   text: "Forgotten"}),
        h("button", {type: "button", class: "btn btn-small", testid: "forget-button",
                     "aria-label": `Forget: ${memory.content}`,
                     on: {click: () => forget(memory, row)}}, "Forget"));
      return row;
    })));
}

/** A forget note's row as forgotten (its Forget button gone) or offered again (after Undo). */
export function showForgotten(row, forgotten) {
  const button = row.querySelector("[data-testid='forget-button']");
  const done = row.querySelector("[data-testid='forget-done']");
  row.dataset.state = forgotten ? "forgotten" : "offered";
  row.classList.toggle("is-forgotten", forgotten);
  button.disabled = false;
  button.hidden = forgotten;
  done.hidden = !forgotten;
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

/** An empty log says what Lumara does, with examples that fill the message box. */
export function showWelcome(log) {
  if (log.querySelector(".message, .welcome")) return;
  const input = $("chat-input");
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

export function clearWelcome(log) {
  log.querySelector(".welcome")?.remove();
}
