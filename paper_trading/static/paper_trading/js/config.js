/* Configuration: POSTs the form to the API as JSON and writes each field's errors beside it. */
(function () {
  "use strict";
  const { api } = window.dexpaper;
  const form = document.getElementById("config-form");
  const status = document.getElementById("config-status");

  function say(kind, message) {
    status.className = `alert ${kind}`;
    status.textContent = message;
    status.hidden = !message;
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; el.hidden = true; });
    form.querySelectorAll(".field.invalid").forEach((el) => el.classList.remove("invalid"));
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }

  function body() {
    const data = {};
    const tokens = [];
    form.querySelectorAll("input").forEach((input) => {
      if (!input.name || input.name === "csrfmiddlewaretoken") return;
      if (input.name === "allowed_tokens") { if (input.checked) tokens.push(input.value); return; }
      if (input.type === "checkbox") data[input.name] = input.checked;
      else data[input.name] = input.value.trim();
    });
    data.allowed_tokens = tokens;
    return data;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    say("", "");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await api(form.dataset.api, { method: "POST", body: body() });
    button.disabled = false;
    if (result.ok) { say("ok", "Saved. A running bot uses the new values from its next tick."); return; }
    const error = result.data.error;
    const fields = error.fields || {};
    let first = null;
    Object.entries(fields).forEach(([name, messages]) => {
      const box = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      if (!box) return;
      box.textContent = messages.join(" ");
      box.hidden = false;
      const field = document.getElementById(`field-${name}`);
      if (field) field.classList.add("invalid");
      const input = document.getElementById(`cfg-${name}`);
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    });
    say("error", Object.keys(fields).length ? "Some values need fixing; see below." : error.message);
    if (first) first.focus();
  });
})();
