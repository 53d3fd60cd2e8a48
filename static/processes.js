/* The container page's Processes section (docker top): loaded at once, on Refresh, when
   the ps options change, and every 5 s while the container runs (Auto-refresh). */
(() => {
  "use strict";
  const card = document.getElementById("processes");
  if (!card) return;
  const box = document.getElementById("top-box");
  const args = document.getElementById("top-args");
  const auto = document.getElementById("top-auto");
  const button = document.getElementById("top-refresh");
  let busy = false;

  async function load() {
    if (busy) return;
    busy = true;
    button.disabled = true;
    try {
      const resp = await fetch(`${card.dataset.url}?ps_args=${encodeURIComponent(args.value)}`,
                               { credentials: "same-origin" });
      if (resp.ok) box.innerHTML = await resp.text();
      else if (resp.status === 404) {
        box.innerHTML = '<p class="muted">This container no longer exists.</p>';
        auto.checked = false;
      }
    } catch (err) {
      /* offline for a moment: keep the last table */
    } finally {
      busy = false;
      button.disabled = false;
    }
  }

  button.addEventListener("click", load);
  args.addEventListener("change", load);
  load();
  setInterval(() => {
    if (!auto.checked || document.hidden) return;
    const head = document.querySelector("#container-details .detail-head");
    const shown = document.getElementById("top-body");
    const state = head ? head.dataset.state : "";
    if (state === "running" || (shown && shown.dataset.state !== state)) load();
  }, 5000);
})();
