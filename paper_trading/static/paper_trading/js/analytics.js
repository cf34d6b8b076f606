/* Analytics: equity curve, drawdown, and a price chart per traded token with its trades.
   Follows the account's socket (live.js): on performance_update or trade_executed it re-fetches
   the figures and series (at most about once a second) and updates the cards, the per-token
   table and the charts in place. */
(function () {
  "use strict";
  const C = window.dexpaperCharts;
  const { api, esc, live, throttled } = window.dexpaper;
  const head = document.getElementById("analytics-live");
  const data = JSON.parse(document.getElementById("analytics-data").textContent);

  /** Replace a chart's points; keep the reader's zoom unless it showed everything. */
  function setPoints(chart, series, points, count) {
    const range = chart.timeScale().getVisibleLogicalRange();
    const wasAll = !range || (range.from <= 0.5 && range.to >= count - 1.5);
    series.setData(points || []);
    if (wasAll) chart.timeScale().fitContent();
  }

  const equity = C.lineChart(document.getElementById("chart-equity"), data.equity, { area: true });
  const p = C.palette();
  const drawdown = C.lineChart(document.getElementById("chart-drawdown"), data.drawdown, {
    area: true, color: p.neg, priceFormat: { type: "custom", formatter: (v) => v.toFixed(2) + "%", minMove: 0.01 },
  });
  let counts = { equity: data.equity.length, drawdown: data.drawdown.length };

  // One chart per traded token: { chart, series, plugin, token (its latest data) }.
  const tokenCharts = new Map();
  function tokenChart(box, symbol, token) {
    const precision = C.pricePrecision(token.prices);
    const { chart, series } = C.lineChart(box, token.prices, {
      priceFormat: { type: "price", precision, minMove: Math.pow(10, -precision) },
    });
    const entry = { chart, series, token, plugin: C.LC.createSeriesMarkers(series, C.tradeMarkers(token.markers)) };
    tokenCharts.set(symbol, entry);
  }
  document.addEventListener("dexpaper:recolour", () =>
    tokenCharts.forEach((e) => e.plugin.setMarkers(C.tradeMarkers(e.token.markers))));
  document.querySelectorAll('[data-chart="token"]').forEach((box) => {
    const token = data.tokens[box.dataset.token];
    if (token) tokenChart(box, box.dataset.token, token);
  });

  function addTokenBox(symbol) {
    const figure = document.createElement("figure");
    figure.className = "token-chart";
    figure.innerHTML = `<figcaption><strong>${esc(symbol)}</strong> <span class="muted small">▲ buy ▼ sell, ✕ reverted</span></figcaption>` +
      `<div class="chart" data-chart="token" data-token="${esc(symbol)}" role="img" aria-label="${esc(symbol)} price with buy and sell markers"></div>`;
    document.getElementById("token-charts").appendChild(figure);
    return figure.querySelector(".chart");
  }

  // -- live updates -----------------------------------------------------------------------
  const FIGURES = {
    sharpe: "fig-sharpe", sortino: "fig-sortino", max_drawdown: "fig-maxdd", profit_factor: "fig-pf",
    win_rate: "fig-winrate", closed: "fig-closed", fees: "fig-fees", gas: "fig-gas",
  };

  function renderFigures(figures) {
    Object.entries(FIGURES).forEach(([key, id]) => {
      const el = document.getElementById(id);
      if (el && key in figures) el.textContent = String(figures[key]);
    });
  }

  function renderPerToken(rows) {
    document.getElementById("per-token-body").innerHTML = rows.length
      ? rows.map((r) => `<tr><td><strong>${esc(r.token)}</strong></td><td class="num">${esc(r.trades)}</td>` +
          `<td class="num">${esc(r.reverted)}</td><td class="num">${esc(r.closes)}</td><td class="num">${esc(r.win_rate)}</td>` +
          `<td class="num">${esc(r.volume)}</td><td class="num">${esc(r.realized)}</td><td class="num">${esc(r.fees)}</td>` +
          `<td class="num">${esc(r.gas)}</td><td class="num ${esc(r.net_tone)}">${esc(r.net)}</td></tr>`).join("")
      : '<tr class="empty"><td colspan="10">No trades yet.</td></tr>';
  }

  function renderPerGasStrategy(rows) {
    document.getElementById("per-gas-strategy-body").innerHTML = rows.length
      ? rows.map((r) => `<tr><td><strong>${esc(r.strategy)}</strong></td><td class="num">${esc(r.trades)}</td>` +
          `<td class="num">${esc(r.gas)}</td><td class="num">${esc(r.delay)}</td><td class="num">${esc(r.revert_rate)}</td>` +
          `<td class="num">${esc(r.drop_rate)}</td><td class="num">${esc(r.sandwiched)}</td><td class="num">${esc(r.mev)}</td></tr>`).join("")
      : '<tr class="empty"><td colspan="8">No trades yet.</td></tr>';
  }

  function renderCharts(next) {
    setPoints(equity.chart, equity.series, next.equity, counts.equity);
    setPoints(drawdown.chart, drawdown.series, next.drawdown, counts.drawdown);
    counts = { equity: next.equity.length, drawdown: next.drawdown.length };
    Object.entries(next.tokens).forEach(([symbol, token]) => {
      const entry = tokenCharts.get(symbol);
      if (!entry) { tokenChart(addTokenBox(symbol), symbol, token); return; }
      const precision = C.pricePrecision(token.prices);
      entry.series.applyOptions({ priceFormat: { type: "price", precision, minMove: Math.pow(10, -precision) } });
      setPoints(entry.chart, entry.series, token.prices, entry.token.prices.length);
      entry.token = token;
      entry.plugin.setMarkers(C.tradeMarkers(token.markers));
    });
    document.getElementById("no-token-charts").hidden = tokenCharts.size > 0;
  }

  const refresh = throttled(async () => {
    const result = await api(`${head.dataset.seriesUrl}&figures=1`);
    if (!result.ok) return;
    renderFigures(result.data.figures);
    renderPerToken(result.data.per_token);
    renderPerGasStrategy(result.data.per_gas_strategy);
    renderCharts(result.data);
    head.dataset.refreshed = String(Number(head.dataset.refreshed || 0) + 1);
  }, 1000);

  live({
    path: head.dataset.wsPath,
    conn: document.getElementById("conn"),
    handlers: { performance_update: refresh, trade_executed: refresh },
    onOpen: ({ reconnected }) => { if (reconnected) refresh(); },
  });
  document.body.dataset.chartsReady = "1";
})();
