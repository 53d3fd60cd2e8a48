// The container page's Exec form: create an exec instance, then run it in an xterm.js
// terminal over ws/exec/<id>/ (panel/events/exec_terminal.py). Output arrives as binary
// messages; {"type":"exit"|"error"} as text. Keys go back as binary (stdin), the size as
// {"type":"resize"}.
(function () {
  "use strict";
  const section = document.getElementById("exec");
  if (!section) return;
  const form = document.getElementById("exec-form");
  const box = document.getElementById("exec-terminal");
  const errorBox = document.getElementById("exec-error");
  const status = document.getElementById("exec-status");
  let session = null;

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function close() {
    if (session) {
      try { session.ws.close(); } catch (e) { /* gone */ }
      session.term.dispose();
      window.removeEventListener("resize", session.onWindowResize);
      session = null;
    }
  }

  function open(info) {
    close();
    box.hidden = false;
    box.textContent = "";
    const term = new window.Terminal({ convertEol: !info.tty, cursorBlink: true, fontSize: 13 });
    const fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}${info.ws}?rows=${term.rows}&cols=${term.cols}`);
    ws.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    const onWindowResize = () => fit.fit();
    session = { ws, term, onWindowResize };
    box.dataset.execId = info.id;
    box.dataset.state = "connecting";
    window.addEventListener("resize", onWindowResize);
    ws.onopen = () => {
      box.dataset.state = "running";
      status.textContent = `exec ${info.id.slice(0, 12)} running`;
      term.focus();
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") {
        term.write(new Uint8Array(event.data));
        return;
      }
      const msg = JSON.parse(event.data);
      if (msg.type === "exit") {
        box.dataset.state = "exited";
        box.dataset.exitCode = String(msg.code);
        status.textContent = `exec ${info.id.slice(0, 12)} exited with code ${msg.code}`;
        term.write(`\r\n[process exited with code ${msg.code}]\r\n`);
      } else if (msg.type === "error") {
        box.dataset.state = "failed";
        status.textContent = "";
        showError(msg.message);
      }
    };
    ws.onclose = () => {
      if (box.dataset.state === "running" || box.dataset.state === "connecting") {
        box.dataset.state = "closed";
        status.textContent = "Disconnected.";
      }
    };
    term.onData((data) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
    });
    term.onResize(({ rows, cols }) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", rows, cols }));
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const data = new FormData(form);
    if (!document.getElementById("exec-tty").checked) data.delete("tty");
    const button = document.getElementById("exec-open");
    // the page-wide handler disables a form's button against double submits: this form
    // stays on the page, so it comes back once the request is answered
    const enable = () => setTimeout(() => { button.disabled = false; }, 0);
    let reply;
    try {
      const resp = await fetch(section.dataset.url, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      reply = await resp.json();
      if (!resp.ok) {
        showError(reply.error || `Exec failed (${resp.status})`);
        return;
      }
    } catch (err) {
      showError(`Exec failed: ${err}`);
      return;
    } finally {
      enable();
    }
    open(reply);
  });
})();
