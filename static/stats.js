/* The container page's Stats card: polls the container's counters (every second while it
   runs, every 5 s otherwise) and draws the last minute as SVG lines. CPU % as the docker
   CLI computes it: container CPU delta / node CPU delta * online CPUs * 100; network and
   block IO as rates between two samples. */
(() => {
  "use strict";
  const card = document.getElementById("stats");
  if (!card) return;
  const POINTS = 60;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 300, H = 72;
  const status = document.getElementById("stats-status");
  const charts = {};
  for (const name of ["cpu", "memory", "net", "blk", "pids"]) {
    const fig = document.getElementById(`stat-${name}`);
    charts[name] = {
      svg: fig.querySelector("svg"),
      value: fig.querySelector("[data-value]"),
      scale: fig.querySelector("[data-scale]"),
      note: fig.querySelector("[data-note]"),
      series: [[], []],
    };
  }
  let last = null;
  let timer = null;

  const decimal = (n, unit) => {  /* docker's units: kB, MB for IO; KiB, MiB for memory */
    const [base, units] = unit === "i" ? [1024, ["B", "KiB", "MiB", "GiB", "TiB"]]
                                        : [1000, ["B", "kB", "MB", "GB", "TB"]];
    let i = 0;
    while (n >= base && i < units.length - 1) { n /= base; i += 1; }
    return `${i === 0 ? Math.round(n) : parseFloat(n.toFixed(2))} ${units[i]}`;
  };
  const bytes = (n) => decimal(n, "");
  const binary = (n) => decimal(n, "i");
  const perSecond = (n) => (n === null ? "…" : `${bytes(n)}/s`);
  const readTime = (text) => Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));

  function push(chart, ...values) {
    if (values.some((v) => v === null)) return;  /* a rate needs two samples */
    values.forEach((v, i) => {
      chart.series[i].push(v);
      if (chart.series[i].length > POINTS) chart.series[i].shift();
    });
  }

  function draw(chart, top, label, limit) {
    const svg = chart.svg;
    svg.replaceChildren();
    const line = (y, cls) => {
      const el = document.createElementNS(SVG, "line");
      el.setAttribute("x1", 0); el.setAttribute("x2", W);
      el.setAttribute("y1", y); el.setAttribute("y2", y);
      el.setAttribute("class", cls);
      el.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(el);
    };
    line(H / 2, "grid");
    if (limit) line(1, "limit");
    chart.series.forEach((points, i) => {
      if (points.length < 2) return;
      const step = W / (POINTS - 1);
      const x0 = W - step * (points.length - 1);
      const path = points.map((v, j) =>
        `${(x0 + j * step).toFixed(1)},${(H - 1 - (Math.min(v, top) / top) * (H - 2)).toFixed(1)}`);
      const el = document.createElementNS(SVG, "polyline");
      el.setAttribute("points", path.join(" "));
      el.setAttribute("class", i === 0 ? "series-a" : "series-b");
      el.setAttribute("vector-effect", "non-scaling-stroke");
      svg.appendChild(el);
    });
    chart.scale.textContent = label;
  }

  /* a round top for the y axis: 1, 2 or 5 times a power of ten, at least `floor` */
  function niceTop(max, floor) {
    const want = Math.max(max * 1.15, floor);
    const power = 10 ** Math.floor(Math.log10(want));
    return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= want);
  }

  function legend(note, a, b) {
    const key = (cls) => Object.assign(document.createElement("i"), { className: `key ${cls}` });
    note.replaceChildren(key("key-a"), document.createTextNode(`${a} `),
                         key("key-b"), document.createTextNode(b));
  }

  function show(s) {
    const prev = last && last.running && s.running ? last : null;
    const seconds = prev ? (readTime(s.read) - readTime(prev.read)) / 1000 : 0;
    const rate = (key) => (seconds > 0 ? Math.max(0, s[key] - prev[key]) / seconds : null);
    let cpu = null;
    if (prev) {
      const system = s.system_cpu - prev.system_cpu;
      if (system > 0) cpu = ((s.cpu_total - prev.cpu_total) / system) * s.online_cpus * 100;
    }
    last = s;
    if (!s.running) {
      status.textContent = "Not running: no live numbers.";
      for (const chart of Object.values(charts)) chart.value.textContent = "–";
      return;
    }
    status.textContent = `Live, every second · ${new Date(readTime(s.read)).toLocaleTimeString()}`;
    if (cpu !== null) card.dataset.cpu = cpu.toFixed(2);

    const c = charts.cpu;
    push(c, cpu);
    c.value.textContent = cpu === null ? "…" : `${cpu.toFixed(2)} %`;
    const cpuTop = niceTop(Math.max(0, ...c.series[0]), 100);
    draw(c, cpuTop, `${cpuTop} %`);
    c.note.textContent = `${s.online_cpus} CPUs · one CPU = 100 %`;

    const m = charts.memory;
    push(m, s.memory_usage);
    const percent = s.memory_limit ? (s.memory_usage / s.memory_limit) * 100 : 0;
    m.value.textContent = `${binary(s.memory_usage)} / ${binary(s.memory_limit)}`;
    const peak = Math.max(...m.series[0]);
    /* against the limit when in reach (use >= 10 %), else against the data (a node-sized limit) */
    const againstLimit = s.memory_limit && s.memory_limit < peak * 10;
    const memTop = againstLimit ? s.memory_limit : niceTop(peak, 1024 * 1024);
    draw(m, memTop, binary(memTop), againstLimit);
    m.note.textContent = `${percent.toFixed(2)} % of the limit, ${binary(s.memory_limit)}`;

    const n = charts.net;
    push(n, rate("net_rx"), rate("net_tx"));
    n.value.textContent = `${perSecond(rate("net_rx"))} / ${perSecond(rate("net_tx"))}`;
    const netTop = niceTop(Math.max(0, ...n.series[0], ...n.series[1]), 1000);
    draw(n, netTop, `${bytes(netTop)}/s`);
    legend(n.note, `rx ${bytes(s.net_rx)}`, `tx ${bytes(s.net_tx)}`);

    const b = charts.blk;
    push(b, rate("blk_read"), rate("blk_write"));
    b.value.textContent = `${perSecond(rate("blk_read"))} / ${perSecond(rate("blk_write"))}`;
    const blkTop = niceTop(Math.max(0, ...b.series[0], ...b.series[1]), 1000);
    draw(b, blkTop, `${bytes(blkTop)}/s`);
    legend(b.note, `read ${bytes(s.blk_read)}`, `write ${bytes(s.blk_write)}`);

    const p = charts.pids;
    push(p, s.pids);
    p.value.textContent = `${s.pids}`;
    const pidTop = s.pids_limit && s.pids_limit < Math.max(...p.series[0]) * 10
      ? s.pids_limit : niceTop(Math.max(...p.series[0]), 10);
    draw(p, pidTop, `${pidTop}`, pidTop === s.pids_limit);
    p.note.textContent = s.pids_limit ? `limit ${s.pids_limit}` : "no limit";
  }

  async function poll() {
    let next = 5000;
    if (!document.hidden) {
      try {
        const resp = await fetch(card.dataset.url, { credentials: "same-origin" });
        if (resp.status === 404) {
          status.textContent = "This container no longer exists.";
          return;
        }
        if (resp.ok) {
          const s = await resp.json();
          show(s);
          if (s.running) next = 1000;
        }
      } catch (err) {
        status.textContent = "Reconnecting…";  /* offline for a moment: keep the charts */
      }
    }
    timer = setTimeout(poll, next);
  }

  /* back on the tab: fresh numbers at once (hidden tabs do not poll) */
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer) { clearTimeout(timer); poll(); }
  });
  poll();
})();
