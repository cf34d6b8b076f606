/* Lightweight Charts (served from /static/, no CDN) in the page's colours, light or dark. */
(function () {
  "use strict";
  const LC = window.LightweightCharts;
  const charts = [];

  function palette() {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    return {
      text: v("--muted"), grid: v("--grid"), border: v("--border"), bg: v("--card"),
      accent: v("--accent"), pos: v("--pos"), neg: v("--neg"), warn: v("--warn"),
    };
  }

  function options(p, extra) {
    return Object.assign({
      autoSize: true,
      layout: { background: { type: "solid", color: p.bg }, textColor: p.text, fontSize: 11, attributionLogo: false },
      grid: { vertLines: { color: p.grid }, horzLines: { color: p.grid } },
      rightPriceScale: { borderColor: p.border },
      timeScale: { borderColor: p.border, timeVisible: true, secondsVisible: false },
      crosshair: { mode: LC.CrosshairMode.Normal },
      handleScroll: { mouseWheel: false, pressedMouseMove: true, horzTouchDrag: true, vertTouchDrag: false },
      handleScale: { mouseWheel: false, pinch: true, axisPressedMouseMove: true },
    }, extra || {});
  }

  function create(container, extra) {
    const p = palette();
    const chart = LC.createChart(container, options(p, extra));
    charts.push({ chart, extra });
    return chart;
  }

  // Follow the system's light/dark switch without a reload.
  const scheme = window.matchMedia("(prefers-color-scheme: dark)");
  const recolour = () => {
    const p = palette();
    charts.forEach(({ chart, extra }) => chart.applyOptions(options(p, extra)));
    document.dispatchEvent(new CustomEvent("dexpaper:recolour", { detail: p }));
  };
  if (scheme.addEventListener) scheme.addEventListener("change", recolour);

  function lineChart(container, points, { area = false, color, priceFormat } = {}) {
    const p = palette();
    const chart = create(container);
    const series = area
      ? chart.addSeries(LC.AreaSeries, {
          lineColor: color || p.accent, topColor: (color || p.accent) + "55", bottomColor: (color || p.accent) + "05",
          lineWidth: 2, priceFormat: priceFormat || { type: "price", precision: 2, minMove: 0.01 },
        })
      : chart.addSeries(LC.LineSeries, {
          color: color || p.accent, lineWidth: 2,
          priceFormat: priceFormat || { type: "price", precision: 2, minMove: 0.01 },
        });
    series.setData(points || []);
    chart.timeScale().fitContent();
    return { chart, series };
  }

  /** Precision that shows a token's price: more places the cheaper it is. */
  function pricePrecision(points) {
    const max = points.reduce((m, pt) => Math.max(m, Math.abs(pt.value)), 0);
    if (max >= 1000) return 2;
    if (max >= 1) return 4;
    if (max === 0) return 2;
    return Math.min(10, 2 + Math.ceil(-Math.log10(max)) + 3);
  }

  function tradeMarkers(markers) {
    const p = palette();
    return markers.map((m) => {
      const reverted = m.status !== "EXECUTED"; // reverted or dropped: no fill
      const buy = m.side === "BUY";
      return {
        time: m.time,
        position: buy ? "belowBar" : "aboveBar",
        shape: reverted ? "circle" : buy ? "arrowUp" : "arrowDown",
        color: reverted ? p.warn : buy ? p.pos : p.neg,
        text: reverted ? "✕" : buy ? "B" : "S",
        size: 1,
      };
    });
  }

  window.dexpaperCharts = { create, lineChart, palette, pricePrecision, tradeMarkers, LC };
})();
