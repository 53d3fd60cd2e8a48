/* Dockyard panel: live updates over the Channels websockets. Plain JS, no framework. */
(() => {
  "use strict";
  const page = document.body.dataset.page;
  const indicator = document.getElementById("live-indicator");
  const serverSkew = (Number(document.body.dataset.now) || Date.now() / 1000) - Date.now() / 1000;

  /* ---------- helpers ---------- */

  function setLive(state) {
    if (!indicator) return;
    indicator.hidden = false;
    indicator.classList.toggle("on", state === "on");
    indicator.classList.toggle("off", state !== "on");
    indicator.querySelector("span").textContent = state === "on" ? "Live" : "Reconnecting…";
    indicator.title = state === "on" ? "Live updates are on" : "Live updates lost, reconnecting";
  }

  /** A websocket that reconnects with back-off; path may be a function (evaluated per attempt). */
  function socket(path, onMessage, hooks = {}) {
    let delay = 500;
    let opened = false;
    const open = () => {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + (typeof path === "function" ? path() : path));
      ws.onopen = () => {
        delay = 500;
        setLive("on");
        if (hooks.onOpen) hooks.onOpen(opened);
        opened = true;
      };
      ws.onmessage = (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        onMessage(message);
      };
      ws.onclose = (event) => {
        setLive("off");
        if (hooks.onClose) hooks.onClose(event);
        if (event.code === 4401) { location.reload(); return; }  // signed out
        if (event.code === 4404) return;  // not ours (any more)
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    };
    open();
  }

  /** Fetch a fragment; messages for the same key while a fetch runs coalesce into one more. */
  const inflight = new Map();
  async function refresh(key, url, apply) {
    const running = inflight.get(key);
    if (running) { running.again = true; return; }
    const entry = { again: false };
    inflight.set(key, entry);
    try {
      do {
        entry.again = false;
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.redirected && new URL(response.url).pathname.startsWith("/login/")) {
          location.reload();
          return;
        }
        if (response.status === 404) apply(null);
        else if (response.ok) apply(await response.text());
      } while (entry.again);
    } catch (e) {
      /* the socket's reconnect resynchronises */
    } finally {
      inflight.delete(key);
    }
  }

  function fromHTML(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  /* Docker's wording (go-units HumanDuration), so the ticking text matches `docker ps`. */
  function humanDuration(seconds) {
    const s = Math.floor(seconds);
    if (s < 1) return "Less than a second";
    if (s === 1) return "1 second";
    if (s < 60) return `${s} seconds`;
    const minutes = Math.floor(s / 60);
    if (minutes === 1) return "About a minute";
    if (minutes < 60) return `${minutes} minutes`;
    const hours = Math.floor(seconds / 3600 + 0.5);
    if (hours === 1) return "About an hour";
    if (hours < 48) return `${hours} hours`;
    if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
    if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
    if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
    return `${Math.floor(seconds / 3600 / 24 / 365)} years`;
  }

  function since(epoch, now) {
    return epoch ? humanDuration(Math.max(now - Number(epoch), 0)) : "Less than a second";
  }

  function statusText(d, now) {
    const code = d.exit === "" || d.exit === undefined ? 0 : d.exit;
    switch (d.state) {
      case "running": return `Up ${since(d.started, now)}`;
      case "paused": return `Up ${since(d.started, now)} (Paused)`;
      case "restarting": return `Restarting (${code}) ${since(d.finished, now)} ago`;
      case "exited": return d.finished ? `Exited (${code}) ${since(d.finished, now)} ago` : `Exited (${code})`;
      case "removing": return "Removal In Progress";
      case "dead": return "Dead";
      default: return "Created";
    }
  }

  /** Keep "Up 5 seconds" and "3 minutes ago" current without asking the server. */
  function tickRows(rows) {
    const now = Date.now() / 1000 + serverSkew;
    for (const row of rows) {
      const d = row.dataset;
      const status = row.querySelector("[data-tick=status]");
      const created = row.querySelector("[data-tick=created]");
      if (status) {
        const text = statusText(d, now);
        if (status.textContent !== text) status.textContent = text;
      }
      if (created && d.created) {
        const text = `${since(d.created, now)} ago`;
        if (created.textContent !== text) created.textContent = text;
      }
    }
  }

  /* ---------- every page ---------- */

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    if (button) setTimeout(() => { button.disabled = true; }, 0);  // no double submits
  });

  document.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-fill]");
    if (!chip) return;
    const input = document.querySelector(chip.dataset.fill);
    if (input) { input.value = chip.dataset.value; input.focus(); }
  });

  /* ---------- container list ---------- */

  if (page === "container-list") {
    const table = document.getElementById("container-table");
    const tbody = table.tBodies[0];
    const filter = document.getElementById("row-filter");
    const empty = document.getElementById("empty-state");
    const rowUrl = (id) => table.dataset.rowUrl.replace("/ID/", `/${id}/`);

    const matches = (row) => {
      const q = filter.value.trim().toLowerCase();
      return !q || row.textContent.toLowerCase().includes(q);
    };
    const counts = () => {
      const rows = tbody.rows;
      let running = 0;
      for (const row of rows) if (["running", "paused", "restarting"].includes(row.dataset.state)) running++;
      document.querySelector("[data-count=total]").textContent = rows.length;
      document.querySelector("[data-count=noun]").textContent = rows.length === 1 ? "container" : "containers";
      document.querySelector("[data-count=running]").textContent = running;
      empty.hidden = rows.length > 0;
      filter.hidden = rows.length === 0;
      table.tHead.hidden = rows.length === 0;
    };
    const applyRow = (id, html) => {
      const old = document.getElementById(`c-${id}`);
      if (html === null) {
        if (old) old.remove();
      } else {
        const row = fromHTML(html);
        if (old) {
          old.replaceWith(row);
        } else {
          tbody.prepend(row);
          row.classList.add("flash");
        }
        row.hidden = !matches(row);
      }
      counts();
    };
    const resync = async () => {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.querySelector("#container-table tbody");
      if (!fresh) return;
      tbody.replaceChildren(...fresh.rows);
      for (const row of tbody.rows) row.hidden = !matches(row);
      counts();
    };

    filter.addEventListener("input", () => { for (const row of tbody.rows) row.hidden = !matches(row); });
    socket("/ws/team/", (m) => {
      if (m.type === "container.state") refresh(`c${m.id}`, rowUrl(m.id), (html) => applyRow(m.id, html));
      else if (m.type === "container.removed") applyRow(m.id, null);
    }, { onOpen: (reconnected) => { if (reconnected) resync(); } });
    setInterval(() => tickRows(tbody.rows), 1000);
  }

  /* ---------- container page ---------- */

  if (page === "container-detail") {
    const box = document.getElementById("container-details");
    const id = box.dataset.id;
    const out = document.getElementById("log-output");
    const emptyNote = document.getElementById("log-empty");
    const follow = document.getElementById("log-follow");
    const wrap = document.getElementById("log-wrap");
    const logStatus = document.getElementById("log-status");
    const MAX_CHARS = 2000000;
    let offset = out.dataset.offset || "0";
    let size = out.textContent.length;

    const scroll = () => { if (follow.checked) out.scrollTop = out.scrollHeight; };
    const append = (text, cls) => {
      if (!text) return;
      if (cls) {
        const span = document.createElement("span");
        span.className = cls;
        span.textContent = text;
        out.append(span);
      } else {
        out.append(document.createTextNode(text));
      }
      size += text.length;
      while (size > MAX_CHARS && out.firstChild) {  // keep the page light on chatty containers
        size -= out.firstChild.textContent.length;
        out.firstChild.remove();
      }
      emptyNote.hidden = true;
      scroll();
    };
    const stateOf = () => box.querySelector(".detail-head").dataset.state;
    const describe = () => {
      const state = stateOf();
      logStatus.textContent = state === "running" ? "Streaming live" : "";
    };

    follow.addEventListener("change", scroll);
    wrap.addEventListener("change", () => out.classList.toggle("wrap", wrap.checked));
    out.addEventListener("scroll", () => {  // scrolling up pauses following, to the end resumes
      const atEnd = out.scrollHeight - out.scrollTop - out.clientHeight < 4;
      if (follow.checked !== atEnd && document.activeElement === out) follow.checked = atEnd;
    });
    if (new URLSearchParams(location.search).get("follow") === "1") {
      document.getElementById("log").scrollIntoView({ block: "start" });
    }
    scroll();
    describe();
    setInterval(() => tickRows(box.querySelectorAll(".detail-head")), 1000);

    socket(() => `/ws/containers/${id}/?offset=${offset}`, (m) => {
      switch (m.type) {
        case "output":
          append(m.data, m.stream === "stderr" ? "stderr" : null);
          break;
        case "output.exit": {
          const last = out.textContent.slice(-1);
          append(`${last && last !== "\n" ? "\n" : ""}[exited with code ${m.code}]\n`, "exit");
          break;
        }
        case "output.unavailable":
          logStatus.textContent = "Live output unavailable; reload to see new lines";
          break;
        case "container.state":
          refresh("details", box.dataset.url, (html) => {
            if (html === null) return;
            box.innerHTML = html;
            describe();
          });
          break;
        case "container.removed": {
          const note = document.createElement("div");
          note.className = "message message-error";
          note.innerHTML = `This container was removed. <a href="${box.dataset.listUrl}">Back to the containers</a>`;
          box.replaceChildren(note);
          logStatus.textContent = "";
          break;
        }
        default:
          break;
      }
    }, {
      onOpen: (reconnected) => {
        if (reconnected) {  // lines may have been missed: start over from the log file
          out.replaceChildren();
          size = 0;
        }
        // a state change between the page's render and this subscription would be lost
        refresh("details", box.dataset.url, (html) => { if (html !== null) { box.innerHTML = html; describe(); } });
        offset = "0";
        describe();
      },
      onClose: (event) => {
        if (event.code === 4404) logStatus.textContent = "This container no longer exists.";
        else logStatus.textContent = "Reconnecting…";
      },
    });
  }

  /* ---------- jobs ---------- */

  if (page === "job-list") {
    const table = document.getElementById("job-table");
    const tbody = table.tBodies[0];
    const empty = document.getElementById("empty-state");
    const rowUrl = (id) => table.dataset.rowUrl.replace("00000000-0000-0000-0000-000000000000", id);
    socket("/ws/team/", (m) => {
      if (m.type !== "job.state") return;
      refresh(`j${m.id}`, rowUrl(m.id), (html) => {
        const old = document.getElementById(`j-${m.id}`);
        if (html === null) { if (old) old.remove(); return; }
        const row = fromHTML(html);
        if (old) old.replaceWith(row);
        else if (table.dataset.liveInsert) { tbody.prepend(row); row.classList.add("flash"); }
        empty.hidden = tbody.rows.length > 0;
        table.tHead.hidden = tbody.rows.length === 0;
      });
    });
  }
})();
