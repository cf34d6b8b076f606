/* Analytics: equity curve, drawdown, and a price chart per traded token with its trades. */
(function () {
  "use strict";
  const C = window.dexpaperCharts;
  const data = JSON.parse(document.getElementById("analytics-data").textContent);

  const equityBox = document.getElementById("chart-equity");
  C.lineChart(equityBox, data.equity, { area: true });

  const ddBox = document.getElementById("chart-drawdown");
  const p = C.palette();
  C.lineChart(ddBox, data.drawdown, {
    area: true, color: p.neg, priceFormat: { type: "custom", formatter: (v) => v.toFixed(2) + "%", minMove: 0.01 },
  });

  document.querySelectorAll('[data-chart="token"]').forEach((box) => {
    const token = data.tokens[box.dataset.token];
    if (!token) return;
    const precision = C.pricePrecision(token.prices);
    const { series } = C.lineChart(box, token.prices, {
      priceFormat: { type: "price", precision, minMove: Math.pow(10, -precision) },
    });
    const markers = C.tradeMarkers(token.markers);
    const plugin = C.LC.createSeriesMarkers(series, markers);
    document.addEventListener("dexpaper:recolour", () => plugin.setMarkers(C.tradeMarkers(token.markers)));
  });
  document.body.dataset.chartsReady = "1";
})();
