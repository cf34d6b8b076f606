/* Sign-in: username/password through POST auth/login/, or Sign-In with Ethereum (EIP-4361)
   with the browser's wallet (EIP-1193 window.ethereum) through GET auth/nonce/ + POST auth/siwe/. */
(function () {
  "use strict";
  const { api } = window.dexpaper;
  const errorBox = document.getElementById("login-error");
  const status = document.getElementById("siwe-status");
  const siweButton = document.getElementById("siwe-button");
  const form = document.getElementById("password-form");
  const next = siweButton.dataset.next || "/paper-trading/";

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) { showError("Enter your username and password."); return; }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await api("/paper-trading/api/auth/login/", { method: "POST", body: { username, password } });
    button.disabled = false;
    if (result.ok) { window.location.assign(next); return; }
    showError(result.data.error.message || "Sign-in failed.");
  });

  /** EIP-55: the mixed-case checksum the server's SIWE parser insists on. */
  function checksumAddress(address) {
    const hex = address.toLowerCase().replace(/^0x/, "");
    if (!/^[0-9a-f]{40}$/.test(hex)) throw new Error("the wallet returned an invalid address");
    const hash = window.keccak256(hex);
    let out = "0x";
    for (let i = 0; i < 40; i++) out += parseInt(hash[i], 16) >= 8 ? hex[i].toUpperCase() : hex[i];
    return out;
  }

  function utf8Hex(text) {
    return "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** The EIP-4361 message, exactly in the order and wording the standard fixes. */
  function siweMessage({ domain, address, uri, chainId, nonce, issuedAt, expirationTime }) {
    return [
      `${domain} wants you to sign in with your Ethereum account:`,
      address,
      "",
      "Sign in to dexpaper, the paper trading dashboard.",
      "",
      `URI: ${uri}`,
      "Version: 1",
      `Chain ID: ${chainId}`,
      `Nonce: ${nonce}`,
      `Issued At: ${issuedAt}`,
      `Expiration Time: ${expirationTime}`,
    ].join("\n");
  }

  const isoSeconds = (date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

  siweButton.addEventListener("click", async () => {
    showError("");
    const wallet = window.ethereum;
    if (!wallet || typeof wallet.request !== "function") {
      showError("No Ethereum wallet found in this browser. Install one (e.g. MetaMask) or sign in with a password.");
      return;
    }
    siweButton.disabled = true;
    try {
      status.textContent = "Asking your wallet for an account…";
      const accounts = await wallet.request({ method: "eth_requestAccounts" });
      if (!accounts || !accounts.length) throw new Error("the wallet shared no account");
      const address = checksumAddress(accounts[0]);
      const nonce = await api("/paper-trading/api/auth/nonce/");
      if (!nonce.ok) throw new Error(nonce.data.error.message);
      let chainId = nonce.data.chain_ids[0];
      try {
        const current = parseInt(await wallet.request({ method: "eth_chainId" }), 16);
        if (nonce.data.chain_ids.includes(current)) chainId = current;
        else if (nonce.data.chain_ids.includes(8453)) chainId = 8453;
      } catch (err) { /* wallets without eth_chainId: use a supported chain */ }
      const now = new Date();
      const message = siweMessage({
        domain: nonce.data.domain,
        address,
        uri: nonce.data.uri,
        chainId,
        nonce: nonce.data.nonce,
        issuedAt: isoSeconds(now),
        expirationTime: isoSeconds(new Date(now.getTime() + 5 * 60 * 1000)),
      });
      status.textContent = "Sign the message in your wallet…";
      const signature = await wallet.request({ method: "personal_sign", params: [utf8Hex(message), address] });
      status.textContent = "Checking the signature…";
      const result = await api("/paper-trading/api/auth/siwe/", { method: "POST", body: { message, signature } });
      if (!result.ok) throw new Error(result.data.error.message);
      status.textContent = "Signed in.";
      window.location.assign(next);
    } catch (err) {
      status.textContent = "";
      const message = err && (err.message || err.reason) ? err.message || err.reason : String(err);
      showError(`Sign in with Ethereum failed: ${message}`);
    } finally {
      siweButton.disabled = false;
    }
  });
})();
