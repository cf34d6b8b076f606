/* Trades: follows the account's socket (live.js). When a trade is executed the table re-fetches
   its current view (htmx, same filters) if it shows the newest page; on an older page it only
   says how many new trades there are, so the rows under the reader do not move. Swaps still in
   flight (submitted, pending, replaced) show above the table until they land or drop. */
(function () {
  "use strict";
  const { live, throttled, esc } = window.dexpaper;
  const page = document.getElementById("trades-live");
  const notice = document.getElementById("trades-new");
  const TABLE = "#trade-table";
  let unseen = 0;

  const onNewestPage = () => (new URLSearchParams(location.search).get("page") || "1") === "1";
  const rowIds = () => new Set([...document.querySelectorAll(`${TABLE} tbody tr[data-id]`)].map((r) => r.dataset.id));

  function showNotice() {
    notice.hidden = !unseen;
    if (!unseen) return;
    const first = new URLSearchParams(location.search);
    first.delete("page");
    notice.querySelector("a").href = `?${first}`;
    notice.querySelector(".trades-new-count").textContent = `${unseen} new trade${unseen === 1 ? "" : "s"}`;
  }

  const refresh = throttled(async () => {
    if (!onNewestPage()) { showNotice(); return; }
    const before = rowIds();
    await htmx.ajax("GET", location.pathname + location.search, { target: TABLE, swap: "outerHTML" });
    document.querySelectorAll(`${TABLE} tbody tr[data-id]`).forEach((row) => {
      if (before.size && !before.has(row.dataset.id)) row.classList.add("fresh");
    });
    page.dataset.refreshed = String(Number(page.dataset.refreshed || 0) + 1);
  }, 1000);

  // Swaps whose transaction is still in flight (transaction_update), until it lands or drops.
  const pendingBox = document.getElementById("tx-pending");
  const inFlight = new Map();
  const FINAL = new Set(["included", "reverted", "dropped"]);

  function showPending() {
    pendingBox.hidden = !inFlight.size;
    pendingBox.innerHTML = [...inFlight.values()].map((e) =>
      `<span><span class="tag info" title="${esc(e.reason)}">${esc(e.state)}</span> ${esc(e.symbol)} ` +
      `attempt ${esc(e.attempt + 1)}, block ${esc(e.block)}</span>`).join(" · ");
  }

  // Back on the newest page (pager, filters): nothing is unseen any more.
  document.body.addEventListener("htmx:afterSettle", () => {
    if (onNewestPage()) { unseen = 0; showNotice(); }
  });

  live({
    path: page.dataset.wsPath,
    conn: document.getElementById("conn"),
    handlers: {
      transaction_update(data) {
        if (FINAL.has(data.state)) inFlight.delete(data.trade_id);
        else inFlight.set(data.trade_id, data);
        showPending();
        page.dataset.txUpdates = String(Number(page.dataset.txUpdates || 0) + 1);
      },
      trade_executed(data) {
        inFlight.delete(data.trade_id);
        showPending();
        if (!onNewestPage()) unseen += 1;
        refresh();
      },
    },
    onOpen: ({ reconnected }) => { if (reconnected) refresh(); },
  });
  page.dataset.liveReady = "1";
})();
