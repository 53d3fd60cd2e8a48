/* The audit page (templates/web/audit_list.html): the details expanders, and the live tail
   over ws/audit/ (panel/events/audit_consumer.py), which sends the new rows that match the
   page's filters as rendered HTML. Plain JS, no framework. */
(() => {
  "use strict";
  const table = document.getElementById("audit-table");
  const toggle = document.getElementById("audit-live");
  const state = document.getElementById("audit-live-state");
  const count = document.getElementById("audit-count");
  const noun = document.getElementById("audit-noun");
  const empty = document.getElementById("empty-state");
  const STORAGE_KEY = "dockyard.audit.live";
  let newest = Number(table.dataset.newest) || 0;
  let ws = null;
  let retry = null;
  let delay = 500;

  table.addEventListener("click", (event) => {
    const button = event.target.closest("[data-details]");
    if (!button) return;
    const details = document.getElementById(button.dataset.details);
    details.hidden = !details.hidden;
    button.setAttribute("aria-expanded", String(!details.hidden));
    button.textContent = details.hidden ? "Details" : "Hide";
  });

  function show(status, title) {
    state.hidden = status === "stopped";
    state.classList.toggle("on", status === "on");
    state.classList.toggle("off", status === "off");
    state.title = title || "";
  }

  function insert(row) {
    if (document.getElementById(`e-${row.id}`)) return;  // the catch-up and the tail overlap
    const template = document.createElement("template");
    template.innerHTML = row.html.trim();
    const body = template.content.firstElementChild;
    table.insertBefore(body, table.tBodies[0] || null);
    body.querySelector("tr").classList.add("flash");
    newest = Math.max(newest, row.id);
    const total = Number(count.textContent) + 1;
    count.textContent = total;
    noun.textContent = total === 1 ? "event" : "events";
    table.tHead.hidden = false;
    empty.hidden = true;
  }

  function path() {
    // The page's own filters (the server applies them to every row) and the newest row shown.
    const query = new URLSearchParams(location.search);
    query.delete("page");
    query.set("after", newest);
    return `/ws/audit/?${query}`;
  }

  function open() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + path());
    ws = socket;
    socket.onopen = () => { delay = 500; show("on", "Live: new events appear at the top"); };
    socket.onmessage = (message) => {
      let row;
      try { row = JSON.parse(message.data); } catch (e) { return; }
      if (row.type === "audit.row") insert(row);
    };
    socket.onclose = (event) => {
      if (ws !== socket) return;  // switched off
      ws = null;
      if (event.code === 4401) { location.reload(); return; }  // signed out
      if (event.code === 4400 || event.code === 4404) {
        show("off", "Live updates are not available for these filters");
        return;
      }
      show("off", "Live updates lost, reconnecting");
      retry = setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  function setLive(on) {
    localStorage.setItem(STORAGE_KEY, on ? "1" : "");
    clearTimeout(retry);
    if (on && !ws) open();
    if (!on) {
      const socket = ws;
      ws = null;
      if (socket) socket.close();
      show("stopped");
    }
  }

  toggle.addEventListener("change", () => setLive(toggle.checked));
  if (!toggle.disabled && localStorage.getItem(STORAGE_KEY)) {
    toggle.checked = true;
    setLive(true);
  }
})();
