/* The account's WebSocket (/ws/paper-trading/<account>/), shared by every live page.

   dexpaper.live({ path, conn, handlers, onOpen }) connects, dispatches each message
   ({type, data, timestamp}) to handlers[type](data, message), and shows its state in `conn`
   (the page's #conn pill: data-state connecting / live / reconnecting / down). After a drop or
   a server restart it reconnects with exponential backoff (and jitter); onOpen({ reconnected })
   runs on every open, so a page can re-sync what it may have missed. A socket silent for too
   long is closed and reopened; 4401 (signed out) goes to the sign-in page, 4404 stops. */
(function () {
  "use strict";
  const BASE_DELAY = 1000;
  const MAX_DELAY = 30000;
  const PING_EVERY = 20000;
  const SILENT_FOR = 45000;

  function live({ path, conn, handlers = {}, onOpen }) {
    function setConn(kind, text) {
      if (!conn) return;
      conn.dataset.state = kind;
      conn.querySelector(".conn-text").textContent = text;
    }

    let socket = null;
    let attempt = 0;
    let opened = false;
    let retryTimer = 0;
    let countdown = 0;
    let lastHeard = 0;

    function connect() {
      clearTimeout(retryTimer);
      clearInterval(countdown);
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      setConn(attempt ? "reconnecting" : "connecting", attempt ? "Reconnecting…" : "Connecting…");
      // frames=batch: one frame per tick, a JSON array of that tick's messages.
      const query = path.includes("?") ? "&frames=batch" : "?frames=batch";
      const ws = new WebSocket(`${scheme}//${location.host}${path}${query}`);
      socket = ws;
      ws.addEventListener("open", () => {
        attempt = 0;
        lastHeard = Date.now();
        setConn("live", "Live");
        const reconnected = opened;
        opened = true;
        if (onOpen) onOpen({ reconnected, send });
      });
      ws.addEventListener("message", (event) => {
        lastHeard = Date.now();
        let payload;
        try { payload = JSON.parse(event.data); } catch (err) { return; }
        for (const message of Array.isArray(payload) ? payload : [payload]) {
          const handle = handlers[message.type];
          if (handle) handle(message.data || {}, message);
        }
      });
      ws.addEventListener("close", (event) => {
        if (socket !== ws) return;
        socket = null;
        if (event.code === 4401) {
          setConn("down", "Signed out — reloading");
          location.assign(`/paper-trading/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
          return;
        }
        if (event.code === 4404) { setConn("down", "This account is not available"); return; }
        scheduleReconnect();
      });
    }

    function scheduleReconnect() {
      const delay = Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      const until = Date.now() + delay;
      const tick = () => {
        const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
        setConn("reconnecting", `Disconnected — reconnecting in ${left} s`);
      };
      tick();
      countdown = setInterval(tick, 500);
      retryTimer = setTimeout(connect, delay);
    }

    function send(payload) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
    }

    // Keep the line warm; a socket silent for too long is dead even if the browser thinks not.
    setInterval(() => {
      if (!socket || socket.readyState !== WebSocket.OPEN) return;
      if (Date.now() - lastHeard > SILENT_FOR) { socket.close(); return; }
      send({ action: "ping" });
    }, PING_EVERY);
    window.addEventListener("online", () => { if (!socket) { attempt = 0; connect(); } });

    connect();
    return { send };
  }

  /** Run `task` (async) at most once per `gap` ms, and once more after it if asked meanwhile. */
  function throttled(task, gap) {
    let running = false;
    let pending = false;
    let last = 0;
    let timer = 0;
    async function run() {
      timer = 0;
      running = true;
      pending = false;
      last = Date.now();
      try { await task(); } catch (err) { /* the next request tries again */ }
      running = false;
      if (pending) schedule();
    }
    function schedule() {
      pending = true;
      if (running || timer) return;
      timer = setTimeout(run, Math.max(0, last + gap - Date.now()));
    }
    return schedule;
  }

  window.dexpaper.live = live;
  window.dexpaper.throttled = throttled;
})();
