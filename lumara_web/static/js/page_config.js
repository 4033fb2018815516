// What the page must agree with the server on, as the server says it: the memory types and
// the length limits, rendered into the page's body[data-config] by web/pages.py (page_config).
// Read from there, a setting such as --max-message-chars reaches the page unchanged.

const config = JSON.parse(document.body.dataset.config);

/** ["knowledge", "experience", "method"]: the types a memory may have. */
export const MEMORY_TYPES = config.memory_types;

/** Longest chat message, memory content and conversation title (characters), and the
 * longest page load the server records (ms). */
export const LIMITS = {
  messageChars: config.limits.message_chars,
  contentChars: config.limits.content_chars,
  titleChars: config.limits.title_chars,
  pageLoadMs: config.limits.page_load_ms,
};
