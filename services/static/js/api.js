// The authenticated API: the key lives in sessionStorage and travels in the Authorization
// header, also for the live stream (read with fetch, not EventSource, which cannot send it).
"use strict";
window.WS = window.WS || {};

WS.api = (() => {
  const KEY_STORAGE = "waystation.key";

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status;
    }
  }

  const key = {
    get: () => sessionStorage.getItem(KEY_STORAGE),
    set: (value) => sessionStorage.setItem(KEY_STORAGE, value),
    clear: () => sessionStorage.removeItem(KEY_STORAGE),
  };

  function headers(withKey) {
    return { Authorization: `Bearer ${withKey || key.get()}`, Accept: "application/json" };
  }

  async function get(path, params, withKey) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    const response = await fetch(url, { headers: headers(withKey) });
    if (!response.ok) {
      let detail = "";
      try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  async function post(path, body) {
    const response = await fetch(new URL(path, location.origin), {
      method: "POST",
      headers: { ...headers(), "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    if (!response.ok) {
      let detail = "";
      try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  // Server-sent events over fetch. Calls onMessage(event, data, id) per message and
  // onState("live" | "reconnecting") as the connection comes and goes; reconnects by itself
  // until stop() is called.
  function stream(path, params, onMessage, onState) {
    const controller = new AbortController();
    let retryMs = 3000;
    let stopped = false;

    async function connect() {
      const url = new URL(path, location.origin);
      for (const [name, value] of Object.entries(params || {})) {
        if (value) url.searchParams.set(name, value);
      }
      const response = await fetch(url, {
        headers: { ...headers(), Accept: "text/event-stream" },
        signal: controller.signal,
        cache: "no-store",
      });
      if (!response.ok) throw new ApiError(response.status);
      onState("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message", data = "", id = null;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue; // a keep-alive comment
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event = text;
            else if (field === "data") data += text;
            else if (field === "id") id = text;
            else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
          }
          if (data) onMessage(event, JSON.parse(data), id);
        }
      }
    }

    (async () => {
      while (!stopped) {
        try {
          await connect();
        } catch (error) {
          if (stopped) return;
          if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
            onState("unauthorized");
            return;
          }
        }
        if (stopped) return;
        onState("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    })();

    return {
      stop() {
        stopped = true;
        controller.abort();
      },
    };
  }

  return { key, get, post, stream, ApiError };
})();
