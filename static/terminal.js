// A browser terminal (xterm.js) over the panel's terminal websocket (panel/events/terminal.py).
//
// Markup (templates/web/_terminal.html): an element with class "dy-terminal" and
//   data-ws-path="/ws/terminal/<kind>/<id>/"   the target is a parameter (container, exec...)
//   data-readonly="1"                           optional: the server drops input anyway
// and inside it an element with class "dy-terminal-screen" and one with class
// "dy-terminal-status". Every such element on the page is mounted on load; other scripts can
// call window.DockyardTerminal.mount(element) for elements they add later.
(function () {
  "use strict";

  const encoder = new TextEncoder();

  function wsUrl(path) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + path;
  }

  function mount(root) {
    if (root.dyTerminal) return root.dyTerminal;
    if (typeof window.Terminal !== "function") {
      setStatus(root, "The terminal could not load (xterm.js is missing).");
      return null;
    }
    const screen = root.querySelector(".dy-terminal-screen") || root;
    let readonly = root.dataset.readonly === "1";
    const term = new window.Terminal({
      cursorBlink: true, fontSize: 13, scrollback: 5000, disableStdin: readonly,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    });
    let fit = null;
    if (window.FitAddon && typeof window.FitAddon.FitAddon === "function") {
      fit = new window.FitAddon.FitAddon();
      term.loadAddon(fit);
    }
    term.open(screen);
    const state = { term: term, socket: null, closed: false, retry: 0 };
    root.dyTerminal = state;

    function sendJson(obj) {
      if (state.socket && state.socket.readyState === WebSocket.OPEN) {
        state.socket.send(JSON.stringify(obj));
      }
    }

    function sendSize() {
      if (!readonly) sendJson({ type: "resize", rows: term.rows, cols: term.cols });
    }

    function refit() {
      if (fit) {
        try { fit.fit(); } catch (e) { /* hidden element: no size yet */ }
      }
    }

    term.onData(function (data) {
      if (readonly || !state.socket || state.socket.readyState !== WebSocket.OPEN) return;
      state.socket.send(encoder.encode(data));
    });
    term.onResize(sendSize);

    function connect() {
      const socket = new WebSocket(wsUrl(root.dataset.wsPath));
      socket.binaryType = "arraybuffer";
      state.socket = socket;
      socket.onopen = function () {
        state.retry = 0;
        setStatus(root, readonly ? "Connected (read only)" : "Connected");
        root.dataset.state = "open";
      };
      socket.onmessage = function (event) {
        if (typeof event.data !== "string") {
          term.write(new Uint8Array(event.data));
          return;
        }
        let msg;
        try { msg = JSON.parse(event.data); } catch (e) { return; }
        if (msg.type === "hello") {
          readonly = readonly || !!msg.readonly;
          term.options.disableStdin = readonly;
          root.dataset.readonly = readonly ? "1" : "0";
          setStatus(root, (msg.running ? "Connected" : "Not running: output appears when it starts") +
            (readonly ? " (read only)" : ""));
          refit();
          sendSize();
          if (!readonly) term.focus();
        } else if (msg.type === "exit") {
          setStatus(root, "Exited" + (msg.code === null || msg.code === undefined ? "" : " with code " + msg.code));
          root.dataset.state = "exited";
        } else if (msg.type === "error") {
          setStatus(root, msg.message || "Error");
        }
      };
      socket.onclose = function (event) {
        if (state.socket !== socket) return;
        state.socket = null;
        root.dataset.state = "closed";
        if (event.code >= 4400 && event.code < 4500) {
          state.closed = true;
          if (event.code !== 4409) setStatus(root, "The terminal is not available.");
          return;
        }
        if (state.closed) return;
        state.retry = Math.min(state.retry + 1, 6);
        setStatus(root, "Disconnected: reconnecting…");
        window.setTimeout(connect, 500 * Math.pow(2, state.retry - 1));
      };
    }

    refit();
    window.addEventListener("resize", refit);
    if (window.ResizeObserver) new ResizeObserver(refit).observe(screen);
    connect();
    state.close = function () {
      state.closed = true;
      if (state.socket) state.socket.close();
      term.dispose();
    };
    return state;
  }

  function setStatus(root, text) {
    const status = root.querySelector(".dy-terminal-status");
    if (status) status.textContent = text;
  }

  function mountAll() {
    document.querySelectorAll(".dy-terminal[data-ws-path]").forEach(mount);
  }

  window.DockyardTerminal = { mount: mount };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mountAll);
  } else {
    mountAll();
  }
})();
