/* Follows one job over ws/jobs/<id>/ (panel/events/consumers.py JobConsumer): its progress
   events, its state changes and its end; reconnects until the job ends. Shared by the images
   and build pages. Plain JS, no framework. */
"use strict";
window.Dockyard = window.Dockyard || {};
window.Dockyard.TERMINAL_JOB_STATES = new Set(["succeeded", "failed"]);

// handlers: progress(event), state(state), finish(state, error), refused() when the job is
// not the user's to follow. Returns {opened: a promise, stop()}.
window.Dockyard.followJob = (jobId, { progress, state, finish, refused }) => {
  let ws = null;
  let stopped = false;
  let resolveOpened;
  const opened = new Promise((resolve) => { resolveOpened = resolve; });

  function open() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(`${scheme}${location.host}/ws/jobs/${jobId}/`);
    ws.onopen = resolveOpened;
    ws.onmessage = (message) => {
      let m;
      try { m = JSON.parse(message.data); } catch (e) { return; }
      if (m.type === "job.progress") progress(m.event || {});
      else if (m.type === "job.state") {
        state(m.state);
        if (window.Dockyard.TERMINAL_JOB_STATES.has(m.state)) finish(m.state, m.error);
      }
    };
    ws.onclose = (event) => {
      resolveOpened();  // a refused socket must not hold the form back
      if (stopped) return;
      if (event.code === 4401) { location.reload(); return; }
      if (event.code === 4404) { refused(); return; }
      setTimeout(open, 1000);  // on reconnecting, the job's state comes first
    };
  }

  open();
  return {
    opened,
    stop() {
      stopped = true;
      if (ws) ws.close();
    },
  };
};
