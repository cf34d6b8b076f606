/* Shared by every page: the API helper, number formatting (as paper_trading/web/display.py),
   and the account switcher. No build step: plain browser JavaScript. */
(function () {
  "use strict";

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    if (cookie) return decodeURIComponent(cookie.split("=")[1]);
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /** fetch JSON from the API; resolves {ok, status, data}; `data.error` on failures. */
  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrfToken();
    }
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return { ok: false, status: 0, data: { error: { code: "network", message: "The server cannot be reached.", fields: {} } } };
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (err) { data = null; }
    }
    if (!response.ok && !(data && data.error)) {
      data = { error: { code: String(response.status), message: `Request failed (${response.status}).`, fields: {} } };
    }
    return { ok: response.ok, status: response.status, data };
  }

  const DASH = "—";
  const num = (v) => {
    if (v === null || v === undefined || v === "") return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  };
  const grouped = (n, places) =>
    Math.abs(n).toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
  const sig6 = (n) => String(Number(Math.abs(n).toPrecision(6)));

  const fmt = {
    usd(v) { const n = num(v); return n === null ? DASH : (n < 0 ? "-" : "") + "$" + grouped(n, 2); },
    cost(v) {
      const n = num(v);
      if (n === null) return DASH;
      return (n < 0 ? "-" : "") + "$" + grouped(n, n !== 0 && Math.abs(n) < 1 ? 4 : 2);
    },
    signedUsd(v) {
      const n = num(v);
      if (n === null) return DASH;
      const rounded = Math.round(n * 100) / 100;
      return (rounded > 0 ? "+" : rounded < 0 ? "-" : "") + "$" + grouped(n, 2);
    },
    price(v) {
      const n = num(v);
      if (n === null) return DASH;
      const m = Math.abs(n);
      const text = m >= 1000 ? grouped(n, 2) : m >= 1 ? grouped(n, 4) : sig6(n);
      return (n < 0 ? "-" : "") + "$" + text;
    },
    percent(v, places = 1) { const n = num(v); return n === null ? DASH : n.toFixed(places) + "%"; },
    ratio(v, places = 2) { const n = num(v); return n === null ? DASH : n.toFixed(places); },
    quantity(v) { const n = num(v); return n === null ? DASH : String(Number(n.toPrecision(6))); },
    tone(v) { const n = num(v); return !n ? "" : n > 0 ? "pos" : "neg"; },
    when(v) {
      if (!v) return DASH;
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) return String(v);
      return d.toISOString().slice(0, 19).replace("T", " ");
    },
  };

  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  // The account switcher reloads the page for the chosen account.
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });

  window.dexpaper = { api, fmt, esc, csrfToken };
})();
