/* Dashboard: starts from the data the page was rendered with, then follows the account's
   WebSocket (/ws/paper-trading/<account>/). Reconnects with exponential backoff (and jitter)
   after a drop or a server restart, re-syncing from a snapshot, and says so on the page. */
(function () {
  "use strict";
  const { api, fmt, esc } = window.dexpaper;
  const C = window.dexpaperCharts;
  const initial = JSON.parse(document.getElementById("dashboard-data").textContent);
  const ROWS = 20;
  const $ = (id) => document.getElementById(id);

  const state = {
    portfolio: initial.snapshot.portfolio,
    positions: new Map(initial.snapshot.portfolio.positions.map((p) => [p.position_id, p])),
    trades: initial.snapshot.trades,
    thoughts: initial.snapshot.thoughts,
    bot: initial.snapshot.bot_status,
    winRate: initial.win_rate,
    alerts: [],
  };

  // -- equity chart ---------------------------------------------------------------------
  const equity = C.lineChart($("equity-chart"), initial.equity, { area: true });
  let lastEquityTime = initial.equity.length ? initial.equity[initial.equity.length - 1].time : 0;
  function addEquityPoint(marketTime, value) {
    const time = Math.floor(new Date(marketTime).getTime() / 1000);
    const point = { time, value: Number(value) };
    if (!Number.isFinite(time) || !Number.isFinite(point.value)) return;
    if (time >= lastEquityTime) equity.series.update(point);
    else equity.series.setData([point]); // a reset account replays from earlier again
    lastEquityTime = time;
  }

  // -- rendering ------------------------------------------------------------------------
  const setTone = (el, value) => { el.classList.remove("pos", "neg"); const t = fmt.tone(value); if (t) el.classList.add(t); };

  function renderFigures() {
    const p = state.portfolio;
    $("fig-total").textContent = fmt.usd(p.total_value_usd);
    $("fig-total-pnl").textContent = fmt.signedUsd(p.total_pnl_usd);
    setTone($("fig-total-pnl"), p.total_pnl_usd);
    $("fig-cash").textContent = fmt.usd(p.cash_usd);
    $("fig-realized").textContent = fmt.signedUsd(p.realized_pnl_usd);
    setTone($("fig-realized"), p.realized_pnl_usd);
    $("fig-unrealized").textContent = fmt.signedUsd(p.unrealized_pnl_usd);
    setTone($("fig-unrealized"), p.unrealized_pnl_usd);
    $("fig-winrate").textContent = fmt.percent(state.winRate);
  }

  function renderPositions() {
    const rows = [...state.positions.values()].filter((p) => p.is_open);
    $("positions-count").textContent = rows.length;
    $("positions-body").innerHTML = rows.length
      ? rows.map((p) => `<tr data-id="${esc(p.position_id)}"><td><strong>${esc(p.token_symbol)}</strong></td>` +
          `<td class="num">${fmt.quantity(p.quantity)}</td><td class="num">${fmt.price(p.average_entry_price_usd)}</td>` +
          `<td class="num">${fmt.price(p.current_price_usd)}</td><td class="num">${fmt.usd(p.current_value_usd)}</td>` +
          `<td class="num ${fmt.tone(p.unrealized_pnl_usd)}">${fmt.signedUsd(p.unrealized_pnl_usd)}</td></tr>`).join("")
      : '<tr class="empty"><td colspan="6">No open positions.</td></tr>';
  }

  // The same badges as the server's _tx_badges (web/views.py) draws.
  function txBadges(t) {
    const badges = [];
    if (t.status !== "EXECUTED") badges.push([t.status.toLowerCase(), "warn", t.revert_reason]);
    if (t.sandwiched) badges.push(["sandwiched", "bad", `front-run and back-run in the mempool: ${fmt.cost(t.mev_cost_usd)} lost`]);
    if ((t.transactions || []).some((e) => e.state === "pending")) {
      badges.push([`pending ${t.inclusion_delay_blocks} blk`, "info", `waited ${t.inclusion_delay_blocks} blocks with the ${t.gas_strategy} gas strategy`]);
    }
    if (t.tx_attempts > 1) badges.push([`replaced ${t.tx_attempts - 1}x`, "info", "re-sent with a higher fee while stuck"]);
    return badges.map(([label, tone, title]) => ` <span class="tag ${tone}" title="${esc(title)}">${esc(label)}</span>`).join("");
  }

  function renderTrades(fresh) {
    $("trades-body").innerHTML = state.trades.length
      ? state.trades.map((t) => {
          const sell = t.side === "SELL";
          const reverted = t.status !== "EXECUTED";
          const classes = [reverted ? "reverted" : "", fresh && fresh.has(t.trade_id) ? "fresh" : ""].join(" ").trim();
          return `<tr data-id="${esc(t.trade_id)}"${classes ? ` class="${classes}"` : ""}>` +
            `<td class="nowrap">${fmt.when(t.created_at)}</td>` +
            `<td><span class="side ${t.side.toLowerCase()}">${esc(t.side)}</span> ${esc(t.token_symbol)}${txBadges(t)}</td>` +
            `<td class="num">${fmt.usd(sell ? t.amount_out_usd : t.amount_in_usd)}</td><td class="num">${fmt.price(t.execution_price_usd)}</td>` +
            `<td class="num">${fmt.cost(t.swap_fee_usd)}</td><td class="num">${fmt.cost(t.gas_cost_usd)}</td>` +
            `<td class="num ${sell ? fmt.tone(t.net_pnl_usd) : ""}">${sell ? fmt.signedUsd(t.net_pnl_usd) : ""}</td></tr>`;
        }).join("")
      : '<tr class="empty"><td colspan="7">No trades yet.</td></tr>';
  }

  function renderThoughts(fresh) {
    $("thoughts").innerHTML = state.thoughts.length
      ? state.thoughts.map((t) => {
          const d = t.decision_type.toLowerCase();
          return `<li data-id="${esc(t.thought_id)}" class="thought ${d}${fresh && fresh.has(t.thought_id) ? " fresh" : ""}">` +
            `<div class="thought-head"><span class="decision ${d}">${esc(t.decision_type)}</span> <strong>${esc(t.token_symbol)}</strong> <span class="muted small">${fmt.when(t.created_at)}</span></div>` +
            `<div class="meters"><span>Confidence <b>${fmt.ratio(t.confidence_level, 0)}</b></span><span>Risk <b>${fmt.ratio(t.risk_assessment, 0)}</b></span></div>` +
            `<p class="reasoning">${esc(t.reasoning)}</p></li>`;
        }).join("")
      : '<li class="empty muted">The bot\'s decisions appear here as it thinks.</li>';
  }

  function botState() {
    const active = state.bot.active;
    if (!active) return "stopped";
    if (active.status === "PAUSED") return "paused";
    return active.stop_requested ? "stopping" : "running";
  }

  function renderBot() {
    const active = state.bot.active;
    const session = active || (state.bot.recent || [])[0] || null;
    const s = botState();
    const stateEl = $("bot-state");
    stateEl.className = `state ${s}`;
    stateEl.textContent = s.charAt(0).toUpperCase() + s.slice(1);
    const source = $("bot-source");
    const src = session ? session.price_source : "";
    source.hidden = !src;
    source.className = `badge ${src}`;
    source.textContent = src.toUpperCase();
    $("bot-last-tick").textContent = fmt.when(session && session.last_tick_at);
    $("bot-ticks").textContent = session ? session.total_ticks : "—";
    $("bot-intel").textContent = session ? session.intel_level : "—";
    const breakers = (session && session.tripped_breakers) || [];
    $("bot-breakers").innerHTML = breakers.length
      ? breakers.map((b) => `<span class="tag warn">${esc(typeof b === "string" ? b : JSON.stringify(b))}</span>`).join(" ")
      : "none tripped";
    $("bot-note").textContent = session ? session.price_source_note || "" : "";
    $("bot-start").disabled = s !== "stopped";
    $("bot-stop").disabled = s === "stopped";
  }

  function renderAlerts() {
    $("alerts").innerHTML = state.alerts.map((a, i) =>
      `<div class="alert ${a.severity === "error" ? "error" : a.severity === "info" ? "info" : "warn"}">` +
      `<span>${esc(a.message)}</span><button type="button" class="linkish" data-dismiss="${i}" aria-label="Dismiss">✕</button></div>`).join("");
  }
  $("alerts").addEventListener("click", (e) => {
    const i = e.target.dataset && e.target.dataset.dismiss;
    if (i !== undefined) { state.alerts.splice(Number(i), 1); renderAlerts(); }
  });

  // Many messages a second at high replay speed: draw at most once a frame.
  const dirty = new Set();
  const freshTrades = new Set();
  const freshThoughts = new Set();
  let frame = 0;
  function invalidate(...parts) {
    parts.forEach((p) => dirty.add(p));
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    if (dirty.has("figures")) renderFigures();
    if (dirty.has("positions")) renderPositions();
    if (dirty.has("trades")) renderTrades(freshTrades);
    if (dirty.has("thoughts")) { renderThoughts(freshThoughts); renderOlder(); }
    if (dirty.has("bot")) renderBot();
    if (dirty.has("alerts")) renderAlerts();
    dirty.clear();
    freshTrades.clear();
    freshThoughts.clear();
  }

  // Newest first; equal times by id, as the server pages them.
  const newestFirst = (key) => (a, b) =>
    a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a[key] < b[key] ? 1 : a[key] > b[key] ? -1 : 0;

  function prepend(list, row, key, fresh, size = ROWS) {
    if (list.some((x) => x[key] === row[key])) return list;
    fresh.add(row[key]);
    const next = [row, ...list];
    next.sort(newestFirst(key));
    return next.slice(0, size);
  }

  function merge(rows, more, key) {
    const seen = new Set(rows.map((x) => x[key]));
    return [...rows, ...more.filter((x) => !seen.has(x[key]))].sort(newestFirst(key));
  }

  // -- older thoughts ("Show older"): the window of thoughts grows by a page each time ---------
  let thoughtRows = ROWS;
  let olderDone = false;
  let olderLoading = false;
  const olderButton = $("thoughts-older");
  const olderError = $("thoughts-older-error");
  function renderOlder() {
    olderButton.hidden = !state.thoughts.length;
    olderButton.disabled = olderDone || olderLoading;
    olderButton.textContent = olderDone ? "No older thoughts" : olderLoading ? "Loading…" : "Show older";
  }
  olderButton.addEventListener("click", async () => {
    const oldest = state.thoughts[state.thoughts.length - 1];
    if (!oldest || olderLoading) return;
    olderLoading = true;
    olderError.hidden = true;
    renderOlder();
    const query = new URLSearchParams({ account: initial.account, before: oldest.created_at, limit: String(ROWS) });
    const result = await api(`${initial.older_thoughts_url}?${query}`);
    olderLoading = false;
    if (result.ok) {
      const have = new Set(state.thoughts.map((t) => t.thought_id));
      const extra = result.data.thoughts.filter((t) => !have.has(t.thought_id));
      thoughtRows = Math.max(ROWS, state.thoughts.length + extra.length);
      state.thoughts = merge(state.thoughts, extra, "thought_id");
      olderDone = !result.data.has_more;
      invalidate("thoughts");
    } else {
      olderError.textContent = result.data.error.message;
      olderError.hidden = false;
    }
    renderOlder();
  });

  // A session seen ended stays ended: a late reply (e.g. to "stop") must not revive it.
  const ended = new Set();
  function applySession(session, running) {
    if (!running) ended.add(session.session_id);
    else if (ended.has(session.session_id)) return;
    const recent = [session, ...(state.bot.recent || []).filter((x) => x.session_id !== session.session_id)];
    state.bot = Object.assign({}, state.bot, { running, active: running ? session : null, recent });
    invalidate("bot");
  }

  // -- messages -------------------------------------------------------------------------
  const handlers = {
    snapshot(data) {
      state.portfolio = data.portfolio;
      state.positions = new Map(data.portfolio.positions.map((p) => [p.position_id, p]));
      state.trades = data.trades;
      // Keep the older thoughts the page has paged in ("Show older").
      state.thoughts = merge(data.thoughts, state.thoughts, "thought_id").slice(0, Math.max(thoughtRows, ROWS));
      state.bot = data.bot_status;
      invalidate("figures", "positions", "trades", "thoughts", "bot");
    },
    portfolio_update(data) {
      Object.assign(state.portfolio, data);
      addEquityPoint(data.market_time, data.total_value_usd);
      if (state.bot.active) {
        state.bot.active.last_tick_at = data.market_time;
        state.bot.active.total_ticks = data.tick_number;
        invalidate("bot");
      }
      invalidate("figures");
    },
    performance_update(data) {
      state.winRate = data.win_rate_percent;
      invalidate("figures");
    },
    trade_executed(data) {
      state.trades = prepend(state.trades, data, "trade_id", freshTrades);
      invalidate("trades");
    },
    thought_log_created(data) {
      state.thoughts = prepend(state.thoughts, data, "thought_id", freshThoughts, thoughtRows);
      invalidate("thoughts");
    },
    position_updated(data) {
      if (data.is_open) state.positions.set(data.position_id, data);
      else state.positions.delete(data.position_id);
      invalidate("positions");
    },
    bot_status(data) { applySession(data.session, data.running); },
    alert(data) {
      state.alerts = [data, ...state.alerts].slice(0, 4);
      invalidate("alerts");
    },
  };

  // -- the socket (live.js) --------------------------------------------------------------
  function startLive() {
    window.dexpaper.live({
      path: initial.ws_path,
      conn: $("conn"),
      handlers,
      onOpen: ({ send }) => send({ action: "snapshot" }),
    });
  }

  // -- bot controls ---------------------------------------------------------------------
  const form = $("bot-form");
  const intel = $("intel");
  const intelOut = $("intel-out");
  const syncIntel = () => { intelOut.textContent = intel.value; };
  intel.addEventListener("input", syncIntel);
  syncIntel();
  const botError = $("bot-error");
  const showBotError = (message) => { botError.textContent = message || ""; botError.hidden = !message; };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showBotError("");
    $("bot-start").disabled = true;
    const speed = form.speed.value;
    const result = await api("/paper-trading/api/bot/start/", {
      method: "POST",
      body: {
        account: initial.account,
        intel_level: Number(intel.value),
        chain: form.chain.value,
        prices: form.prices.value,
        speed: speed === "max" ? "max" : Number(speed),
      },
    });
    if (result.ok) applySession(result.data, true);
    else { showBotError(result.data.error.message); renderBot(); }
  });

  $("bot-stop").addEventListener("click", async () => {
    showBotError("");
    $("bot-stop").disabled = true;
    const result = await api("/paper-trading/api/bot/stop/", {
      method: "POST", body: { account: initial.account, reason: "stopped from the dashboard" },
    });
    if (result.ok) applySession(result.data, ["RUNNING", "PAUSED"].includes(result.data.status));
    else { showBotError(result.data.error.message); renderBot(); }
  });

  renderBot();
  renderOlder();
  startLive();
  document.body.dataset.dashboardReady = "1";
})();
