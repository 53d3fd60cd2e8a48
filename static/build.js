/* The build pages: the form is posted without leaving the page while the page already listens
   on ws/jobs/<id>/ (the job id was reserved with the form), so the log shows every line; then
   the page becomes the build's page. The log follows new lines, "Step N/M : ..." lines make the
   step list and the progress bar, Cancel stops the build. Plain JS, no framework. */
(() => {
  "use strict";
  const ZERO_ID = "00000000-0000-0000-0000-000000000000";
  const TERMINAL = window.Dockyard.TERMINAL_JOB_STATES;
  // The job states' badges, as the state_class template filter gives them.
  const STATE_BADGE = { succeeded: "badge-ok", failed: "badge-bad", running: "badge-ok" };
  const STEP_LINE = /^Step (\d+)\/(\d+) : (.*)$/;
  const STEP_BADGE = {
    running: ["badge-warn", "running"], cached: ["badge-idle", "cached"],
    done: ["badge-ok", "done"], failed: ["badge-bad", "failed"],
    cancelled: ["badge-off", "cancelled"],
  };

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Shows one build's state, steps and log in `box` (templates/web/_image_build_log.html). */
  function follow(box, jobId) {
    const log = box.querySelector("#build-log");
    const followBox = box.querySelector("#build-follow");
    const badge = box.querySelector("#build-state");
    const stepText = box.querySelector("#build-step");
    const meter = box.querySelector("#build-progress");
    const stepList = box.querySelector("#build-step-list");
    const outcome = box.querySelector("#build-outcome");
    const cancel = box.querySelector("#build-cancel");
    let current = null;  // the step being run: {li, number, total, text, cached}
    let partial = "";  // the log's last line until its newline arrives
    let socket = null;  // window.Dockyard.followJob's, set once it follows

    box.hidden = false;
    box.dataset.job = jobId;
    for (const part of [log, stepList, outcome]) part.replaceChildren();  // an earlier try's
    if (cancel) cancel.action = box.dataset.cancelUrl.replace(ZERO_ID, jobId);

    function setState(state) {
      box.dataset.state = state;
      badge.textContent = state;
      badge.className = `badge ${STATE_BADGE[state] || "badge-idle"}`;
      if (state === "running" && !current) stepText.textContent = "Preparing the context…";
    }

    function markStep(step, state) {
      step.li.dataset.state = state;
      const [className, text] = STEP_BADGE[state];
      const mark = step.li.querySelector(".badge");
      mark.className = `badge ${className}`;
      mark.textContent = text;
    }

    function finishStep() {
      if (!current) return;
      markStep(current, current.cached ? "cached" : "done");
      meter.value = current.number / current.total;
    }

    function startStep(number, total, text) {
      finishStep();
      const li = element("li", "build-step");
      li.dataset.step = number;
      li.append(element("span", "mono step-number", `${number}/${total}`),
        element("span", "mono step-text", text), element("span", "badge"));
      li.querySelector(".step-text").title = text;
      stepList.append(li);
      current = { li, number, total, text, cached: false };
      markStep(current, "running");
      meter.max = 1;
      meter.value = (number - 1) / total;
      stepText.textContent = `Step ${number} of ${total}: ${text}`;
    }

    function readLine(line) {
      const step = STEP_LINE.exec(line);
      if (step) startStep(Number(step[1]), Number(step[2]), step[3]);
      else if (current && line.trim() === "---> Using cache") current.cached = true;
    }

    function append(text, className) {
      log.append(className ? element("span", className, text) : document.createTextNode(text));
      if (followBox.checked) log.scrollTop = log.scrollHeight;
    }

    function progress(event) {
      const error = event.error || (event.errorDetail && event.errorDetail.message);
      if (error) { append(`${error}\n`, "stderr"); return; }
      if (event.status) {  // a FROM image being pulled: its steps, not each byte's progress
        const detail = event.progressDetail || {};
        if (!detail.total) append(`${event.id ? `${event.id}: ` : ""}${event.status}\n`);
        return;
      }
      if (typeof event.stream !== "string") return;  // aux: the image id, in the outcome too
      append(event.stream);
      const lines = (partial + event.stream).split("\n");
      partial = lines.pop();
      lines.forEach(readLine);
    }

    async function finish(state, error) {
      socket.stop();
      if (cancel) cancel.hidden = true;
      if (partial) { readLine(partial); partial = ""; }
      if (error && !log.textContent.trimEnd().endsWith(error.trimEnd())) {
        append(`${log.textContent && !log.textContent.endsWith("\n") ? "\n" : ""}${error}\n`,
          "stderr");  // the CLI's last line, in red
      }
      try {  // the build's page, now that it is over, has the outcome and the duration
        const response = await fetch(box.dataset.pageUrl.replace(ZERO_ID, jobId),
          { credentials: "same-origin" });
        const ended = new DOMParser().parseFromString(await response.text(), "text/html");
        outcome.replaceChildren(...ended.getElementById("build-outcome").childNodes);
        box.querySelector("#build-meta").replaceWith(ended.getElementById("build-meta"));
      } catch (e) {
        outcome.textContent = "Reload the page to see how the build ended.";
      }
      const cancelled = Boolean(outcome.querySelector("[data-cancelled]"));
      if (cancelled) {
        badge.textContent = "cancelled";
        badge.className = "badge badge-idle";  // state_class of a state it does not know
      }
      if (state === "succeeded") {
        finishStep();
        meter.max = 1;
        meter.value = 1;
        const cached = stepList.querySelectorAll("[data-state=cached]").length;
        stepText.textContent = current
          ? `All ${current.total} steps done${cached ? `, ${cached} from the cache` : ""}` : "Done";
      } else if (current) {
        markStep(current, cancelled ? "cancelled" : "failed");
        stepText.textContent = `${cancelled ? "Cancelled at" : "Failed at"} step `
          + `${current.number} of ${current.total}`;
        const slot = outcome.querySelector("[data-failed-step]");
        if (slot) slot.textContent = `Step ${current.number}/${current.total} (${current.text})`;
      } else {
        stepText.textContent = cancelled ? "Cancelled before the first step"
          : "Failed before the first step";
      }
      box.dispatchEvent(new CustomEvent("build-finished", { detail: { state }, bubbles: true }));
    }

    // Scrolling up to read stops following; scrolling back to the end resumes it.
    log.addEventListener("scroll", () => {
      followBox.checked = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    });
    socket = window.Dockyard.followJob(jobId, {
      progress, state: setState, finish, 
      refused: () => append("This build is not yours to follow.\n", "stderr"),
    });
    return socket;
  }

  const box = document.getElementById("build");
  if (!box) return;
  let following = null;

  /* ---------- Cancel: posted in place; the job's state arrives on the socket ---------- */

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.id !== "build-cancel" || event.defaultPrevented) return;  // declined confirm
    event.preventDefault();
    const button = form.querySelector("button");
    button.textContent = "Cancelling…";
    setTimeout(() => { button.disabled = true; }, 0);
    const response = await fetch(form.action, { method: "POST", body: new FormData(form),
      credentials: "same-origin" }).catch(() => null);
    if (!response || !response.ok) {
      button.textContent = "Cancel build";
      button.disabled = false;
      window.alert("The build could not be cancelled; try again.");
    }
  });

  /* ---------- the form: follow the reserved job, post, then become the build's page ---------- */

  function swapForm(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html");
    const old = document.getElementById("build-form-card");
    const replacement = fresh.getElementById("build-form-card");
    if (!replacement) { location.reload(); return; }  // not the form: signed out, say
    old.replaceWith(document.adoptNode(replacement));
    showSource();
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("form[data-build-form]") || event.defaultPrevented) return;
    event.preventDefault();
    const reserved = form.elements.job_id.value;
    following = follow(box, reserved);  // listening before the job exists
    box.hidden = true;  // shown once the build started, not for a form error
    await following.opened;
    let response;
    try {
      response = await fetch(form.action, { method: "POST", body: new FormData(form),
        credentials: "same-origin" });
    } catch (e) {
      following.stop();
      form.querySelector("button[type=submit]").disabled = false;
      window.alert("The panel could not be reached; try again.");
      return;
    }
    const started = response.redirected && new URL(response.url).pathname.match(
      /\/images\/builds\/([0-9a-f-]{36})\/$/);
    if (!started) {  // the form with its errors and a fresh job id
      following.stop();
      swapForm(await response.text());
      return;
    }
    if (started[1] !== reserved) {  // the reservation was gone: the job has another id
      following.stop();
      following = follow(box, started[1]);
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const selector of ["#build-title", "#build-meta", "nav.crumbs"]) {  // the build's own
      const fresh = page.querySelector(selector);
      if (fresh) document.querySelector(selector).replaceWith(document.adoptNode(fresh));
    }
    for (const part of document.querySelectorAll("[data-form-part]")) part.hidden = true;
    box.hidden = false;
    history.pushState({ build: started[1] }, "", box.dataset.pageUrl.replace(ZERO_ID, started[1]));
  });
  window.addEventListener("popstate", () => location.reload());

  /* ---------- the form shows the fields of the chosen context source ---------- */

  const SOURCE_FIELDS = { upload: ["context", "dockerfile"], dockerfile: ["dockerfile_text"],
    git: ["remote", "dockerfile"] };

  function showSource() {
    const form = document.querySelector("form[data-build-form]");
    if (!form) return;
    const checked = form.querySelector("input[name=source]:checked");
    const chosen = SOURCE_FIELDS[checked ? checked.value : "dockerfile"];
    for (const name of ["context", "dockerfile_text", "remote", "dockerfile"]) {
      form.elements[name].closest(".field").hidden = !chosen.includes(name);
    }
  }

  document.addEventListener("change", (event) => {
    if (event.target.name === "source") showSource();
  });
  showSource();

  /* ---------- the build's own page ---------- */

  if (document.body.dataset.page === "build-detail" && !TERMINAL.has(box.dataset.state)) {
    following = follow(box, box.dataset.job);
  }
})();
