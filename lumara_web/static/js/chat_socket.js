// The chat's one websocket to /ws/chat: frames out, parsed events in, and a reconnect with a
// growing, jittered delay after it drops (so a restarted server is not hit by every open tab
// at the same instant).

let socket = null;
let state = "connecting"; // connecting | open | closed
let attempts = 0; // reconnects since the last open: the delay doubles with each
let timer = 0;
let retryAt = 0;
let on = null;

/**
 * Connect, and stay connected. `handlers`: open() once a connection opens, event(event) for
 * each event from the server, close() when an open (or opening) connection drops, change()
 * whenever connectionProblem() may say something new.
 */
export function connectChat(handlers) {
  on = handlers;
  connect();
}

function connect() {
  clearTimeout(timer);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let ws;
  try {
    ws = new WebSocket(`${scheme}//${location.host}/ws/chat`);
  } catch {
    scheduleReconnect();
    return;
  }
  socket = ws;
  state = "connecting";
  on.change();
  ws.addEventListener("open", () => {
    if (socket !== ws) return;
    state = "open";
    attempts = 0;
    on.open();
  });
  ws.addEventListener("message", (message) => {
    if (socket !== ws) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    on.event(event);
  });
  ws.addEventListener("close", () => {
    if (socket !== ws) return;
    socket = null;
    state = "closed";
    on.close();
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  state = "closed";
  const delay = Math.min(15000, 500 * 2 ** attempts) * (0.8 + Math.random() * 0.4);
  attempts += 1;
  retryAt = Date.now() + delay;
  clearTimeout(timer);
  timer = setTimeout(connect, delay);
  on.change();
}

/** Try again at once (the machine is back online, the tab visible again). */
export function reconnectNow() {
  if (state === "closed") {
    attempts = 0;
    connect();
  }
}

export function isOpen() {
  return state === "open";
}

/** Send a frame; false when there is no open connection to send it on. */
export function send(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

/** Why a message would have to wait for the connection, in words; "" when it need not. */
export function connectionProblem() {
  if (state === "connecting" && attempts > 0) return "Reconnecting to Lumara…";
  if (state === "closed") {
    const seconds = Math.max(1, Math.round((retryAt - Date.now()) / 1000));
    return `Lost the connection to Lumara. Trying again in ${seconds} s…`;
  }
  return "";
}
