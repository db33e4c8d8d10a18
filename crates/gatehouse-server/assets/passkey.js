// Passkeys on Gatehouse pages. A form with `data-passkey="get"` (sign in) or
// `data-passkey="create"` (add a passkey) asks `data-options` for WebAuthn options, lets the
// browser talk to the authenticator, then posts the answer in its `credential` field.
// WebAuthn's binary fields travel as base64url, as the WebAuthn JSON serialisation writes them.
"use strict";
(() => {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return; // The forms stay hidden: this browser cannot use passkeys.
  }

  const bytes = (b64url) => {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  const b64url = (buffer) => {
    let raw = "";
    for (const b of new Uint8Array(buffer)) raw += String.fromCharCode(b);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: bytes(c.id) }));

  const creationOptions = (pk) => ({
    ...pk,
    challenge: bytes(pk.challenge),
    user: { ...pk.user, id: bytes(pk.user.id) },
    excludeCredentials: withIds(pk.excludeCredentials),
  });
  const requestOptions = (pk) => ({
    ...pk,
    challenge: bytes(pk.challenge),
    allowCredentials: withIds(pk.allowCredentials),
  });

  const answer = (cred) => {
    const r = cred.response;
    const response = { clientDataJSON: b64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = b64url(r.authenticatorData);
      response.signature = b64url(r.signature);
      response.userHandle = r.userHandle ? b64url(r.userHandle) : null;
    }
    return JSON.stringify({
      id: cred.id,
      rawId: b64url(cred.rawId),
      type: cred.type,
      response,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    });
  };

  const explain = (e) => {
    if (e && e.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out. Try again.";
    }
    if (e && e.name === "InvalidStateError") {
      return "This authenticator already holds a passkey for your account.";
    }
    return (e && e.message) || "Something went wrong. Reload the page and try again.";
  };

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    const status = form.querySelector("[data-passkey-status]");
    const button = form.querySelector("button[type=submit]");
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "";
      button.disabled = true;
      try {
        const body = new URLSearchParams(new FormData(form));
        body.delete("credential");
        const res = await fetch(form.dataset.options, {
          method: "POST",
          body,
          credentials: "same-origin",
        });
        const options = await res.json().catch(() => ({}));
        if (!res.ok) {
          throw new Error(options.error_description || "The server refused. Reload the page and try again.");
        }
        const cred =
          form.dataset.passkey === "create"
            ? await navigator.credentials.create({ publicKey: creationOptions(options.publicKey) })
            : await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
        form.elements.credential.value = answer(cred);
        form.submit(); // Does not fire "submit" again.
      } catch (e) {
        status.textContent = explain(e);
        button.disabled = false;
      }
    });
  }
})();
