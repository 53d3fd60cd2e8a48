/* The images pages: live progress of pull, push and load jobs (one bar per layer, from
   Docker's JSON progress messages on ws/jobs/<id>/), the pull and load forms posted without
   leaving the page, and the list's filters. Plain JS, no framework. */
(() => {
  "use strict";
  const ZERO_ID = "00000000-0000-0000-0000-000000000000";
  const TERMINAL = window.Dockyard.TERMINAL_JOB_STATES;
  // The last word on a layer: nothing more happens to it in this job.
  const LAYER_DONE = new Set(["Pull complete", "Already exists", "Pushed", "Layer already exists"]);
  const STATE_BADGE = { succeeded: "badge-ok", failed: "badge-bad", running: "badge-warn" };

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function humanSize(bytes) {  // go-units HumanSize, as docker pull prints it
    let value = bytes;
    for (const unit of ["B", "kB", "MB", "GB", "TB"]) {
      if (value < 1000 || unit === "TB") return `${Number(value.toPrecision(3))}${unit}`;
      value /= 1000;
    }
    return `${bytes}B`;
  }

  /** Shows one job's progress in `box` (templates/web/_image_progress.html). */
  function follow(box, jobId) {
    const layers = box.querySelector("#job-layers");
    const lines = box.querySelector("#job-lines");
    const badge = box.querySelector("#job-state");
    const outcome = box.querySelector("#job-outcome");
    const bars = new Map();
    let socket = null;  // window.Dockyard.followJob's, set once it follows

    box.hidden = false;
    box.dataset.job = jobId;

    function setState(state) {
      box.dataset.state = state;
      badge.textContent = state;
      badge.className = `badge ${STATE_BADGE[state] || "badge-idle"}`;
    }

    function bar(id) {
      let row = bars.get(id);
      if (!row) {
        row = element("li", "job-layer");
        row.dataset.layer = id;
        row.append(element("span", "mono layer-id", id), element("progress"),
          element("span", "layer-status small"));
        layers.append(row);
        bars.set(id, row);
      }
      return row;
    }

    function line(text, className) {
      lines.append(element("li", className, text));
    }

    function progress(event) {
      if (event.error || event.errorDetail) {
        line(event.error || event.errorDetail.message, "field-error");
        return;
      }
      if (event.stream) { line(event.stream.trim()); return; }
      if (!event.status) return;  // aux lines (a push's digest) repeat what a status says
      if (!event.id || event.status.startsWith("Pulling from")) {
        line(event.id ? `${event.id}: ${event.status}` : event.status);
        return;
      }
      const row = bar(event.id);
      const meter = row.querySelector("progress");
      const detail = event.progressDetail || {};
      const done = LAYER_DONE.has(event.status) || event.status.startsWith("Mounted from");
      let text = event.status;
      if (done) {
        meter.max = 1;
        meter.value = 1;
      } else if (detail.total > 0) {
        meter.max = detail.total;
        meter.value = Math.min(detail.current || 0, detail.total);
        text += ` ${humanSize(detail.current || 0)} / ${humanSize(detail.total)}`;
      } else if (event.status === "Download complete" || event.status === "Verifying Checksum") {
        meter.max = 1;
        meter.value = 1;
      } else {
        meter.removeAttribute("value");  // indeterminate: waiting or preparing
      }
      row.dataset.state = done ? "done" : "busy";
      row.querySelector(".layer-status").textContent = text;
    }

    async function finish(state) {
      if (state === "succeeded") {  // the job's truth: every layer made it (a load's bars too)
        for (const row of bars.values()) {
          row.dataset.state = "done";
          const meter = row.querySelector("progress");
          meter.max = 1;
          meter.value = 1;
        }
      }
      socket.stop();
      try {
        const response = await fetch(box.dataset.outcomeUrl.replace(ZERO_ID, jobId),
          { credentials: "same-origin" });
        if (response.ok) outcome.innerHTML = await response.text();
        if (lines.children.length) {  // Docker's last line is already there
          for (const repeated of outcome.querySelectorAll(".status-line")) repeated.remove();
        }
      } catch (e) {
        outcome.textContent = "Reload the page to see how the job ended.";
      }
      box.dispatchEvent(new CustomEvent("job-finished", { detail: { state }, bubbles: true }));
    }

    socket = window.Dockyard.followJob(jobId, {
      progress, state: setState, finish, 
      refused: () => line("This job is not yours to follow.", "field-error"),
    });
    return socket;
  }

  /* ---------- the pull and load forms: post them, then follow the job on this page ---------- */

  const progressBox = document.getElementById("job-progress");
  let current = null;

  async function freshForms() {
    // The job ids of the forms are used up: the page's own forms carry new ones.
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    swapForms(await response.text());
  }

  function swapForms(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html");
    for (const id of ["pull-card", "load-card"]) {
      const old = document.getElementById(id);
      const replacement = fresh.getElementById(id);
      if (old && replacement) old.replaceWith(document.adoptNode(replacement));
    }
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form[data-job-form]") || !progressBox) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    if (current) current.stop();
    progressBox.querySelector("#job-layers").replaceChildren();
    progressBox.querySelector("#job-lines").replaceChildren();
    progressBox.querySelector("#job-outcome").replaceChildren();
    progressBox.querySelector("#job-title").textContent =
      form.action.includes("/load/") ? "Load" : `Pull ${form.elements.reference.value}`;
    const reserved = form.elements.job_id.value;
    current = follow(progressBox, reserved);  // listening before the job exists
    await current.opened;
    let response;
    try {
      response = await fetch(form.action, { method: "POST", body: new FormData(form),
        credentials: "same-origin" });
    } catch (e) {
      current.stop();
      progressBox.hidden = true;
      button.disabled = false;
      window.alert("The panel could not be reached; try again.");
      return;
    }
    const started = response.redirected && new URL(response.url).pathname.match(
      /\/images\/jobs\/([0-9a-f-]{36})\/$/);
    if (!started) {  // the form with its errors
      current.stop();
      progressBox.hidden = true;
      swapForms(await response.text());
      return;
    }
    if (started[1] !== reserved) {  // the reservation was gone: the job has another id
      current.stop();
      current = follow(progressBox, started[1]);
    }
    freshForms();
  });

  /* ---------- the job's own page ---------- */

  if (document.body.dataset.page === "image-job" && progressBox
      && !TERMINAL.has(progressBox.dataset.state)) {
    current = follow(progressBox, progressBox.dataset.job);
  }

  /* ---------- a save downloads and the page stays: its button comes back ---------- */

  document.addEventListener("submit", (event) => {
    const button = event.target.matches("form[data-download]")
      && event.target.querySelector("button[type=submit]");
    if (button) setTimeout(() => { button.disabled = false; }, 3000);
  });

  /* ---------- the list's filters apply when ticked ---------- */

  const filters = document.getElementById("image-filters");
  if (filters) filters.addEventListener("change", () => filters.submit());
})();
