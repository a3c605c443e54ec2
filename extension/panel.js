// Front-end of tfnp_inspect.TracePanel (an anywidget ES module; no build step).
//
// The Python model sends one page of rows, a per-function summary and the drill-down of the
// selected call; this module draws them. Every piece of recorded data (function names, string
// tensors, exception text) reaches the page through textContent or setAttribute, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";
const PAGE_SIZES = [25, 50, 100, 200];

// -- small DOM helpers ------------------------------------------------------------------------

function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function formatNs(ns) {
  if (ns === null || ns === undefined) return "–";
  if (ns < 1e3) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 1 : 0)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function formatNumber(x) {
  if (x === null || x === undefined) return "–";
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 1e5 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toPrecision(4);
}

function badge(kind, text, title) {
  return h("span", { className: `tfnp-badge tfnp-badge-${kind}`, text, title });
}

/** Bars of a histogram as an inline SVG; heights are relative to the tallest bar. */
function bars(counts, width, height, title, minBars = 1) {
  const chart = svg("svg", {
    class: "tfnp-bars", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
  });
  const label = svg("title");
  label.textContent = title;
  chart.append(label);
  const peak = Math.max(1, ...counts);
  const step = width / Math.max(minBars, counts.length);
  counts.forEach((count, i) => {
    if (!count) return;
    const barHeight = Math.max(1, (count / peak) * (height - 1));
    chart.append(svg("rect", {
      x: (i * step + 0.5).toFixed(2), y: (height - barHeight).toFixed(2),
      width: Math.max(1, step - 1).toFixed(2), height: barHeight.toFixed(2),
    }));
  });
  return chart;
}

function replaceChildren(node, children) {
  node.replaceChildren(...children.filter(Boolean));
}

// -- sections ---------------------------------------------------------------------------------

function buildControls(model, onChange) {
  const functionSelect = h("select", { className: "tfnp-function-filter", title: "Show one function" });
  const processSelect = h("select", { className: "tfnp-process-filter", title: "Show one process" });
  const violations = h("input", { type: "checkbox", className: "tfnp-violations-only" });
  const errors = h("input", { type: "checkbox", className: "tfnp-errors-only" });
  const sortSelect = h("select", { className: "tfnp-sort", title: "Sort rows by" }, [
    h("option", { value: "seq", text: "newest / oldest" }),
    h("option", { value: "duration", text: "duration" }),
  ]);
  const direction = h("button", { type: "button", className: "tfnp-sort-direction" });
  const set = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };
  functionSelect.addEventListener("change", () => set("function_filter", functionSelect.value));
  processSelect.addEventListener("change", () => set("process_filter", processSelect.value));
  violations.addEventListener("change", () => set("violations_only", violations.checked));
  errors.addEventListener("change", () => set("errors_only", errors.checked));
  sortSelect.addEventListener("change", () => set("sort_by", sortSelect.value));
  direction.addEventListener("click", () => set("sort_desc", !model.get("sort_desc")));
  const processLabel = h("label", { className: "tfnp-control" }, ["process ", processSelect]);
  const node = h("div", { className: "tfnp-controls" }, [
    h("label", { className: "tfnp-control" }, ["function ", functionSelect]),
    processLabel,
    h("label", { className: "tfnp-control" }, [violations, " violations only"]),
    h("label", { className: "tfnp-control" }, [errors, " errors only"]),
    h("label", { className: "tfnp-control" }, ["sort ", sortSelect]),
    direction,
  ]);
  let shownFunctions = null;
  let shownProcesses = null;
  function fillOptions(select, values, allText) {
    replaceChildren(select, [
      h("option", { value: "", text: allText }),
      ...values.map((value) => h("option", { value, text: value })),
    ]);
  }
  function update() {
    const functions = model.get("functions");
    const functionKey = JSON.stringify(functions);
    if (functionKey !== shownFunctions) {
      fillOptions(functionSelect, functions, "all functions");
      shownFunctions = functionKey;
    }
    const processes = model.get("processes");
    const processKey = JSON.stringify(processes);
    if (processKey !== shownProcesses) {
      fillOptions(processSelect, processes, "all processes");
      shownProcesses = processKey;
    }
    processLabel.hidden = processes.length === 0;
    functionSelect.value = model.get("function_filter");
    processSelect.value = model.get("process_filter");
    violations.checked = model.get("violations_only");
    errors.checked = model.get("errors_only");
    sortSelect.value = model.get("sort_by");
    const desc = model.get("sort_desc");
    direction.textContent = desc ? "↓ desc" : "↑ asc";
    direction.title = desc ? "Descending: click for ascending" : "Ascending: click for descending";
  }
  onChange(["functions", "processes", "function_filter", "process_filter", "violations_only",
    "errors_only", "sort_by", "sort_desc"], update);
  update();
  return node;
}

function buildSummary(model, onChange) {
  const body = h("tbody");
  const node = h("details", { className: "tfnp-summary", open: "" }, [
    h("summary", { text: "Per-function summary" }),
    h("div", { className: "tfnp-summary-wrap" }, [h("table", { className: "tfnp-table" }, [
      h("thead", {}, [h("tr", {}, ["function", "calls", "errors", "p50", "p99", "max", "timing",
        "in flight", "time share", "violations", "hints"].map((title) => h("th", { text: title })))]),
      body,
    ])]),
  ]);
  function update() {
    replaceChildren(body, model.get("summary").map((fn) => {
      const hist = fn.histogram;
      const kinds = Object.entries(fn.violations).map(([kind, n]) =>
        badge("violation", `${kind} ×${n}`, `${n} ${n === 1 ? "call" : "calls"} broke the ${kind} contract`));
      const pipeline = fn.pipeline;
      const hints = (fn.hints || []).map((kind) => badge("hint", kind, "advice, not a bug: see the hints below"));
      return h("tr", {}, [
        h("td", {}, [
          h("div", { className: "tfnp-mono", text: fn.function }),
          ...(fn.signatures || []).map((line) => h("div", { className: "tfnp-mono tfnp-signature", text: line })),
        ]),
        h("td", { className: "tfnp-num", text: fn.calls }),
        h("td", { className: fn.errors ? "tfnp-num tfnp-error-text" : "tfnp-num", text: fn.errors }),
        h("td", { className: "tfnp-num", text: formatNs(fn.p50_ns) }),
        h("td", { className: "tfnp-num", text: formatNs(fn.p99_ns) }),
        h("td", { className: "tfnp-num", text: formatNs(fn.max_ns) }),
        h("td", { className: "tfnp-spark" }, [hist.counts.length
          ? bars(hist.counts, 96, 18, `durations ${formatNs(hist.low_ns)} … ${formatNs(hist.high_ns)} (log scale)`, 16)
          : null]),
        h("td", {
          className: "tfnp-num",
          text: pipeline ? `${pipeline.mean_in_flight.toFixed(2)} / ${pipeline.max_in_flight}` : "–",
          title: pipeline ? `calls running at once (mean / max), from ${pipeline.thread_names} threads`
            + (pipeline.parallel_work === null ? "" : `; their work progressed ${pipeline.parallel_work.toFixed(2)} calls at a time`) : "",
        }),
        h("td", {
          className: "tfnp-num",
          text: pipeline ? `${Math.round(pipeline.time_share * 100)}%` : "–",
          title: pipeline ? `a call was running for ${formatNs(pipeline.busy_ns)} of the traced wall time` : "",
        }),
        h("td", {}, kinds),
        h("td", {}, hints),
      ]);
    }));
  }
  onChange(["summary"], update);
  update();
  return node;
}

function buildFindings(model, onChange) {
  const list = h("ul", { className: "tfnp-findings" });
  const summary = h("summary");
  const node = h("details", { className: "tfnp-hints", open: "" }, [summary, list]);
  function update() {
    const findings = model.get("findings");
    const hints = findings.hints || [];
    const builds = findings.builds || [];
    node.hidden = !hints.length && !builds.length;
    summary.textContent = `Hints from all calls (${hints.length})`;
    replaceChildren(list, [
      ...hints.map((hint) => h("li", {}, [
        badge("hint", hint.kind, "advice, not a bug"),
        h("span", { className: "tfnp-mono", text: ` ${hint.function}` }),
        h("span", { text: `: ${hint.message}` }),
      ])),
      ...builds.map((text) => h("li", { className: "tfnp-muted", text: `ops built: ${text}` })),
      builds.length && findings.registry ? h("li", { className: "tfnp-muted", text: findings.registry }) : null,
    ]);
  }
  onChange(["findings"], update);
  update();
  return node;
}

// -- the timeline: threads as lanes, calls as bars --------------------------------------------------

const TL_MIN_WIDTH = 480; // the chart is drawn at the panel's width (pixels), at least this
const TL_LABEL = 120; // lane labels on the left
const TL_LANE = 16;
const TL_AXIS = 18;
const TL_COLORS = 8; // bar colours cycle per function (tfnp-tl-fn-0 … 7 in the CSS)
// bar fields, as state.timeline sends them
const [B_LANE, B_START, B_END, B_SEQ, B_FLAGS, B_CALLS, B_FUNCTION] = [0, 1, 2, 3, 4, 5, 6];
const BAR_VIOLATION = 1;
const BAR_ERROR = 2;

function niceStep(span) {
  const raw = span / 6;
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  for (const factor of [1, 2, 5, 10]) if (raw <= factor * power) return factor * power;
  return 10 * power;
}

function buildTimeline(model, onChange) {
  const setWindow = (window) => {
    model.set("timeline_window", window);
    model.save_changes();
  };
  const current = () => {
    const tl = model.get("timeline");
    return tl.window && tl.window.length === 2 ? tl.window : [0, 0];
  };
  const zoom = (factor) => {
    const tl = model.get("timeline");
    const [low, high] = current();
    const middle = (low + high) / 2;
    const half = Math.max(1000, ((high - low) * factor) / 2);
    const from = Math.max(tl.start, middle - half);
    const to = Math.min(tl.end, middle + half);
    if (factor > 1 && from <= tl.start && to >= tl.end) setWindow([]);
    else setWindow([from, to]);
  };
  const zoomIn = h("button", { type: "button", className: "tfnp-tl-zoom-in", text: "+", title: "Zoom in", onclick: () => zoom(0.5) });
  const zoomOut = h("button", { type: "button", className: "tfnp-tl-zoom-out", text: "−", title: "Zoom out", onclick: () => zoom(2) });
  const reset = h("button", { type: "button", className: "tfnp-tl-reset", text: "all", title: "Show every kept call", onclick: () => setWindow([]) });
  const range = h("span", { className: "tfnp-muted tfnp-tl-range" });
  const chart = svg("svg", { class: "tfnp-tl-chart", role: "img" });
  const plot = h("div", { className: "tfnp-tl-plot" }, [chart]);
  const empty = h("div", { className: "tfnp-empty", text: "No calls recorded yet." });
  const summary = h("summary", { text: "Timeline" });
  const node = h("details", { className: "tfnp-timeline", open: "" }, [
    summary,
    h("div", { className: "tfnp-tl-tools" }, [zoomIn, zoomOut, reset, range,
      h("span", { className: "tfnp-muted", text: "drag across the bars to zoom to a time window; click a bar for its call" })]),
    plot,
    empty,
  ]);

  let drag = null;
  let width = TL_MIN_WIDTH;
  const toX = (event) => {
    const box = chart.getBoundingClientRect();
    return ((event.clientX - box.left) * width) / Math.max(1, box.width);
  };
  const toTime = (x) => {
    const [low, high] = current();
    return low + ((Math.min(Math.max(x, TL_LABEL), width) - TL_LABEL) / (width - TL_LABEL)) * (high - low);
  };
  chart.addEventListener("mousedown", (event) => {
    if (event.button !== 0) return;
    const x = toX(event);
    if (x < TL_LABEL) return;
    const band = svg("rect", { class: "tfnp-tl-brush", x, y: 0, width: 0, height: chart.viewBox.baseVal.height });
    chart.append(band);
    drag = { x, band };
    event.preventDefault();
  });
  chart.addEventListener("mousemove", (event) => {
    if (!drag) return;
    const x = Math.min(Math.max(toX(event), TL_LABEL), width);
    drag.band.setAttribute("x", String(Math.min(drag.x, x)));
    drag.band.setAttribute("width", String(Math.abs(x - drag.x)));
  });
  const endDrag = (event) => {
    if (!drag) return;
    const x = toX(event);
    const { x: startX, band } = drag;
    drag = null;
    band.remove();
    if (Math.abs(x - startX) < 4) return; // a click, not a drag
    const [from, to] = [toTime(Math.min(startX, x)), toTime(Math.max(startX, x))];
    if (to > from) setWindow([from, to]);
  };
  chart.addEventListener("mouseup", endDrag);
  chart.addEventListener("mouseleave", (event) => { if (drag) endDrag(event); });

  function update() {
    const tl = model.get("timeline");
    const lanes = tl.lanes || [];
    const hasCalls = lanes.length > 0 || (tl.end || 0) > 0;
    plot.hidden = !hasCalls;
    empty.hidden = hasCalls;
    const [low, high] = current();
    const span = Math.max(1, high - low);
    const zoomed = (model.get("timeline_window") || []).length === 2;
    reset.disabled = !zoomed;
    const shown = (tl.bars || []).reduce((n, bar) => n + bar[B_CALLS], 0);
    range.textContent = `${formatNs(low - tl.start)} … ${formatNs(high - tl.start)} after the first kept call · `
      + `${shown} ${shown === 1 ? "call" : "calls"} in ${lanes.length} ${lanes.length === 1 ? "thread" : "threads"}`
      + (tl.merged ? " (calls closer than a pixel drawn as one bar: zoom in to tell them apart)" : "");
    const height = TL_AXIS + lanes.length * TL_LANE + 4;
    width = Math.max(TL_MIN_WIDTH, Math.round(plot.clientWidth || node.clientWidth || TL_MIN_WIDTH));
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const label = svg("title");
    label.textContent = "numpy_function calls per thread over time";
    const nodes = [label];
    // axis: ticks at round offsets from the first kept call
    const step = niceStep(span);
    for (let t = Math.ceil((low - tl.start) / step) * step; t + tl.start <= high; t += step) {
      const x = TL_LABEL + ((t + tl.start - low) / span) * (width - TL_LABEL);
      nodes.push(svg("line", { class: "tfnp-tl-tick", x1: x, x2: x, y1: TL_AXIS - 4, y2: height }));
      const text = svg("text", { class: "tfnp-tl-tick-label", x: x + 2, y: TL_AXIS - 6 });
      text.textContent = formatNs(t);
      nodes.push(text);
    }
    lanes.forEach((lane, index) => {
      const y = TL_AXIS + index * TL_LANE;
      nodes.push(svg("rect", { class: index % 2 ? "tfnp-tl-lane tfnp-tl-lane-odd" : "tfnp-tl-lane", x: 0, y, width: width, height: TL_LANE }));
      const text = svg("text", { class: "tfnp-tl-lane-label", x: 4, y: y + TL_LANE - 4 });
      text.textContent = lane.thread;
      const tip = svg("title");
      tip.textContent = `thread ${lane.thread} on ${lane.process}`;
      text.append(tip);
      nodes.push(text);
    });
    const functions = tl.functions || [];
    const selected = model.get("selected_seq");
    for (const bar of tl.bars || []) {
      const y = TL_AXIS + bar[B_LANE] * TL_LANE + 3;
      const x0 = TL_LABEL + ((Math.max(bar[B_START], low) - low) / span) * (width - TL_LABEL);
      const x1 = TL_LABEL + ((Math.min(bar[B_END], high) - low) / span) * (width - TL_LABEL);
      const classes = ["tfnp-tl-bar", `tfnp-tl-fn-${bar[B_FUNCTION] < 0 ? "mixed" : bar[B_FUNCTION] % TL_COLORS}`];
      if (bar[B_FLAGS] & BAR_VIOLATION) classes.push("tfnp-tl-violation");
      if (bar[B_FLAGS] & BAR_ERROR) classes.push("tfnp-tl-error");
      if (bar[B_SEQ] === selected) classes.push("tfnp-tl-selected");
      const rect = svg("rect", {
        class: classes.join(" "), x: x0.toFixed(2), y, width: Math.max(2, x1 - x0).toFixed(2), height: TL_LANE - 6,
        "data-seq": bar[B_SEQ],
      });
      const name = bar[B_FUNCTION] < 0 ? "several functions" : functions[bar[B_FUNCTION]];
      const tip = svg("title");
      tip.textContent = bar[B_CALLS] > 1
        ? `${bar[B_CALLS]} calls (${name}) from #${bar[B_SEQ]} over ${formatNs(bar[B_END] - bar[B_START])}`
        : `#${bar[B_SEQ]} ${name}: ${formatNs(bar[B_END] - bar[B_START])}`
          + (bar[B_FLAGS] & BAR_VIOLATION ? " · broke a contract" : "") + (bar[B_FLAGS] & BAR_ERROR ? " · raised" : "");
      rect.append(tip);
      rect.addEventListener("click", () => {
        model.set("selected_seq", bar[B_SEQ]);
        model.save_changes();
      });
      nodes.push(rect);
      if (bar[B_FLAGS] & (BAR_VIOLATION | BAR_ERROR)) {
        const mark = Math.max(x0, Math.min(x1, x0 + 3));
        nodes.push(svg("polygon", {
          class: bar[B_FLAGS] & BAR_ERROR ? "tfnp-tl-mark tfnp-tl-mark-error" : "tfnp-tl-mark",
          points: `${(mark - 3).toFixed(2)},${y - 3} ${(mark + 3).toFixed(2)},${y - 3} ${mark.toFixed(2)},${y + 2}`,
        }));
      }
    }
    chart.replaceChildren(...nodes);
  }
  onChange(["timeline", "timeline_window", "selected_seq"], update);
  update();
  // drawn at the panel's width: again when it changes (and once the panel is on the page)
  if (typeof ResizeObserver !== "undefined") {
    let drawnAt = 0;
    new ResizeObserver(() => {
      if (plot.clientWidth && Math.abs(plot.clientWidth - drawnAt) > 2) {
        drawnAt = plot.clientWidth;
        update();
      }
    }).observe(plot);
  }
  return node;
}

function buildTable(model, onChange) {
  const body = h("tbody");
  const node = h("div", { className: "tfnp-table-wrap" }, [
    h("table", { className: "tfnp-table tfnp-rows" }, [
      h("thead", {}, [h("tr", {}, ["#", "function", "mode", "thread", "duration", "inputs → outputs",
        "flags"].map((title) => h("th", { text: title })))]),
      body,
    ]),
  ]);
  const select = (seq) => {
    model.set("selected_seq", seq);
    model.save_changes();
  };
  function update() {
    const selected = model.get("selected_seq");
    const rows = model.get("rows");
    if (!rows.length) {
      replaceChildren(body, [h("tr", {}, [h("td", {
        colspan: 7, className: "tfnp-empty",
        text: model.get("stored") ? "No call matches the filters." : "No calls recorded yet.",
      })])]);
      return;
    }
    replaceChildren(body, rows.map((row) => {
      const flags = [
        ...row.violations.map((kind) => badge("violation", kind, `broke the ${kind} contract`)),
        row.error ? badge("error", "error", row.error) : null,
        ...row.badges.map((b) => badge(b.kind, b.text, b.title)),
      ];
      const classes = ["tfnp-row"];
      if (row.seq === selected) classes.push("tfnp-selected");
      if (row.violations.length) classes.push("tfnp-row-violation");
      if (row.error) classes.push("tfnp-row-error");
      return h("tr", {
        className: classes.join(" "), tabindex: 0, "data-seq": row.seq,
        onclick: () => select(row.seq),
        onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") select(row.seq); },
      }, [
        h("td", { className: "tfnp-num", text: row.seq }),
        h("td", { className: "tfnp-mono", text: row.function }),
        h("td", { text: row.mode }),
        h("td", { text: row.thread, title: row.process }),
        h("td", { className: "tfnp-num", text: formatNs(row.duration_ns) }),
        h("td", {
          className: "tfnp-mono tfnp-shapes",
          text: `(${row.inputs.join(", ")}) → (${row.outputs.join(", ")})`,
        }),
        h("td", { className: "tfnp-flags" }, flags),
      ]);
    }));
  }
  onChange(["rows", "selected_seq", "stored"], update);
  update();
  return node;
}

function buildPager(model, onChange) {
  const go = (page) => {
    model.set("page", Math.max(0, Math.min(page, model.get("page_count") - 1)));
    model.save_changes();
  };
  const first = h("button", { type: "button", text: "«", title: "First page", onclick: () => go(0) });
  const prev = h("button", { type: "button", text: "‹", title: "Previous page", onclick: () => go(model.get("page") - 1) });
  const next = h("button", { type: "button", text: "›", title: "Next page", onclick: () => go(model.get("page") + 1) });
  const last = h("button", { type: "button", text: "»", title: "Last page", onclick: () => go(model.get("page_count") - 1) });
  const position = h("span", { className: "tfnp-page-position" });
  const size = h("select", { className: "tfnp-page-size", title: "Rows per page" });
  size.addEventListener("change", () => {
    model.set("page_size", Number(size.value));
    model.save_changes();
  });
  const counts = h("span", { className: "tfnp-muted" });
  const node = h("div", { className: "tfnp-pager" }, [first, prev, position, next, last, size, counts]);
  function update() {
    const page = model.get("page");
    const pages = model.get("page_count");
    position.textContent = `page ${page + 1} of ${pages}`;
    first.disabled = prev.disabled = page <= 0;
    next.disabled = last.disabled = page >= pages - 1;
    const pageSize = model.get("page_size");
    const sizes = PAGE_SIZES.includes(pageSize) ? PAGE_SIZES : [...PAGE_SIZES, pageSize].sort((a, b) => a - b);
    replaceChildren(size, sizes.map((n) => h("option", { value: n, text: `${n} / page` })));
    size.value = String(pageSize);
    counts.textContent = `${model.get("row_count")} matching`;
  }
  onChange(["page", "page_count", "page_size", "row_count"], update);
  update();
  return node;
}

function keyValues(pairs) {
  // Plain divs in a grid: hosts style dl/dt/dd in ways that would fight this layout.
  return h("div", { className: "tfnp-kv" }, pairs.filter(([, value]) => value !== null && value !== undefined)
    .flatMap(([key, value]) => [
      h("div", { className: "tfnp-kv-key", text: key }),
      h("div", { className: "tfnp-kv-value", text: value }),
    ]));
}

function arrayCard(array) {
  const stats = array.stats;
  const pairs = [
    ["shape", `(${array.shape.join(", ")}${array.shape.length === 1 ? "," : ""})`],
    ["dtype", array.dtype],
    ["bytes", formatBytes(array.nbytes)],
    ["fingerprint", array.fingerprint],
    ["memory", array.aliasing.join("; ") || null],
  ];
  if (stats) {
    pairs.push(["range", `${formatNumber(stats.min)} … ${formatNumber(stats.max)}`]);
    pairs.push(["mean", formatNumber(stats.mean)]);
    if (stats.nan_count || stats.inf_count) pairs.push(["non-finite", `${stats.nan_count} NaN, ${stats.inf_count} Inf`]);
    if (!stats.exact) pairs.push(["stats from", `a sample of ${stats.elements} elements`]);
  }
  pairs.push(["note", array.capture_note]);
  const hist = array.histogram;
  return h("div", { className: "tfnp-array" }, [
    h("div", { className: "tfnp-array-title", text: array.label }),
    keyValues(pairs),
    array.preview !== null ? h("pre", { className: "tfnp-preview", text: array.preview }) : null,
    hist ? h("div", { className: "tfnp-value-hist" }, [
      bars(hist.counts, 160, 32, `values ${formatNumber(hist.low)} … ${formatNumber(hist.high)}`),
      h("div", { className: "tfnp-axis" }, [
        h("span", { text: formatNumber(hist.low) }), h("span", { text: formatNumber(hist.high) }),
      ]),
    ]) : null,
  ]);
}

function buildDetail(model, onChange) {
  const node = h("div", { className: "tfnp-detail" });
  const replayOutput = h("div", { className: "tfnp-replay-result" });
  const replayButton = h("button", {
    type: "button", className: "tfnp-replay", text: "Replay",
    title: "Run the function again on the captured inputs and compare the outputs",
    onclick: () => {
      replayButton.disabled = true;
      replayOutput.textContent = "replaying…";
      model.send({ type: "replay", seq: model.get("selected_seq") });
    },
  });
  function updateReplay() {
    const result = model.get("replay_result");
    const detail = model.get("detail");
    replayButton.disabled = !detail.replayable;
    if (result.seq === undefined || result.seq !== detail.seq) {
      replayOutput.replaceChildren();
      return;
    }
    const differences = result.differences || [];
    if (result.matches) {
      replaceChildren(replayOutput, [
        badge("ok", "reproduced", "the replay gave the recorded result"),
        result.error ? h("span", { text: ` raised again: ${result.error}` }) : null,
      ]);
    } else if (differences.length) {
      replaceChildren(replayOutput, [
        badge("violation", "differs", "the replay did not reproduce the recorded result"),
        result.error ? h("span", { text: ` raised ${result.error}` }) : null,
        h("ul", {}, differences.map((text) => h("li", { text }))),
      ]);
    } else {
      replaceChildren(replayOutput, [badge("error", "replay failed", ""), h("span", { text: ` ${result.error}` })]);
    }
  }
  function update() {
    const detail = model.get("detail");
    if (detail.seq === undefined) {
      replaceChildren(node, [h("div", { className: "tfnp-empty", text: "Click a row to see its inputs and outputs." })]);
      return;
    }
    if (detail.missing) {
      replaceChildren(node, [h("div", { className: "tfnp-empty", text: `#${detail.seq}: ${detail.missing}` })]);
      return;
    }
    const stateful = detail.stateful === null ? "unknown" : String(detail.stateful);
    replaceChildren(node, [
      h("div", { className: "tfnp-detail-title" }, [
        h("span", { className: "tfnp-mono", text: `#${detail.seq} ${detail.function}` }),
        replayButton,
      ]),
      replayOutput,
      keyValues([
        ["call site", detail.call_site || "unknown (graph built before tracing)"],
        ["mode", `${detail.mode}, stateful=${stateful}`],
        ["op", detail.op_name],
        ["thread", `${detail.thread} on ${detail.process}`],
        ["duration", formatNs(detail.duration_ns)],
      ]),
      detail.error ? h("div", { className: "tfnp-error-box" }, [
        h("div", { className: "tfnp-error-text", text: `${detail.error.type}: ${detail.error.message}` }),
        detail.error.traceback ? h("details", {}, [
          h("summary", { text: "traceback" }), h("pre", { text: detail.error.traceback }),
        ]) : null,
      ]) : null,
      detail.violations.length ? h("ul", { className: "tfnp-findings" }, detail.violations.map((v) =>
        h("li", {}, [badge("violation", v.kind, v.argument || v.kind), h("span", { text: ` ${v.message}` })]))) : null,
      detail.hints.length ? h("ul", { className: "tfnp-findings" }, detail.hints.map((hint) =>
        h("li", {}, [badge("hint", hint.kind, "advice, not a bug"), h("span", { text: ` ${hint.message}` })]))) : null,
      h("div", { className: "tfnp-arrays" }, [...detail.inputs, ...detail.outputs].map(arrayCard)),
    ]);
    updateReplay();
  }
  onChange(["detail"], update);
  onChange(["replay_result"], updateReplay);
  update();
  return node;
}

function buildHeader(model, onChange) {
  const status = h("span", { className: "tfnp-muted" });
  const node = h("div", { className: "tfnp-header" }, [
    h("span", { className: "tfnp-title", text: "numpy_function trace" }), status,
  ]);
  function update() {
    const parts = [
      `${model.get("stored")} of ${model.get("capacity")} kept`,
      `${model.get("total")} recorded`,
    ];
    if (model.get("dropped")) parts.push(`${model.get("dropped")} evicted`);
    parts.push(model.get("live") ? "live" : "loaded (read-only)");
    status.textContent = parts.join(" · ");
  }
  onChange(["stored", "capacity", "total", "dropped", "live"], update);
  update();
  return node;
}

export default {
  render({ model, el }) {
    const handlers = [];
    const onChange = (names, handler) => {
      for (const name of names) {
        model.on(`change:${name}`, handler);
        handlers.push([`change:${name}`, handler]);
      }
    };
    const root = h("div", { className: "tfnp-panel" }, [
      buildHeader(model, onChange),
      buildSummary(model, onChange),
      buildFindings(model, onChange),
      buildTimeline(model, onChange),
      buildControls(model, onChange),
      h("div", { className: "tfnp-main" }, [
        h("div", { className: "tfnp-list" }, [buildTable(model, onChange), buildPager(model, onChange)]),
        buildDetail(model, onChange),
      ]),
    ]);
    el.append(root);
    return () => {
      for (const [event, handler] of handlers) model.off(event, handler);
    };
  },
};
