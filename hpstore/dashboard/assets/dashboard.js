// hpstore dashboard: draws each page from the server's JSON and keeps it current.
//
// Everything the search file holds (project, hyperparameter and metric names, values,
// messages) reaches the page as text: element text and attribute values, never markup.
// The one exception is the plots, which the server draws as SVG with every such string
// escaped (the report's drawing); they are inserted as given.
"use strict";

(() => {
  const main = document.getElementById("main");
  const params = new URLSearchParams(window.location.search);
  const STATUSES = ["RUNNING", "IDLE", "INVALID", "STOPPED", "COMPLETED", "FAILED"];
  const MAX_SELECTED = 5;  // curves of selected trials the plots draw (MAX_SELECTED in api.py)

  // -- building the page ------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "on") {
        for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.append(kid instanceof Node ? kid : String(kid));
    }
    return node;
  }

  function href(path, query) {
    const pairs = Object.entries(query).filter(([, v]) => v !== null && v !== undefined);
    return pairs.length ? `${path}?${new URLSearchParams(pairs)}` : path;
  }

  function drawn(html) {
    // SVG drawn by the server, every string of the file escaped there
    const box = h("div", { class: "scroll" });
    box.innerHTML = html;
    return box;
  }

  function statusClass(status) {
    return STATUSES.includes(status) ? `s-${status}` : "";
  }

  function score(value) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "number") return String(value); // "inf", "-inf", "nan"
    return String(Number.parseFloat(value.toPrecision(6)));
  }

  // "N s ago" while the page follows a search; the time itself once it stops (finished),
  // as the page no longer updates what "ago" would need
  function lastActivity(at, now, finished) {
    return finished && at !== null && at !== undefined
      ? `at ${new Date(at * 1000).toLocaleString()}` : ago(at, now);
  }

  function ago(at, now) {
    if (at === null || at === undefined) return "never";
    const s = Math.max(0, now - at);
    if (s < 90) return `${Math.round(s)} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h ago`;
    return `${(s / 86400).toFixed(1)} days ago`;
  }

  function counts(map) {
    return h("span", { class: "counts" }, STATUSES.filter((s) => map[s]).map(
      (s) => h("span", { class: statusClass(s), text: `${s} ${map[s]}` })));
  }

  // How far a search is, counted as `hpstore summary` and `hpstore watch` count it: trials
  // added without counting towards max_trials are not in "ended of max_trials".
  function progress(p) {
    const ended = p.max_trials ? `${p.done} of ${p.max_trials} ended` : `${p.done} ended`;
    return p.uncounted ? `${ended} (${p.uncounted} added, not counted)` : ended;
  }

  // What steering did, in the words of `hpstore summary`'s "Steered:" line.
  function steered(p) {
    const parts = ["enqueued", "added", "warm start", "retired"].filter((k) => p.steered[k])
      .map((k) => `${p.steered[k]} ${k}`);
    if (!parts.length) return "";
    return parts.join(", ") + (p.uncounted ? ` (${p.uncounted} not counted towards max_trials)` : "");
  }

  function table(columns, rows, attrs) {
    return h("table", attrs || {}, h("thead", {}, h("tr", {}, columns.map(
      (c) => h("th", { text: c })))), h("tbody", {}, rows));
  }

  function showError(text) {
    const box = document.getElementById("error");
    box.textContent = text;
    box.hidden = !text;
  }

  // What a click or a choice asks for, outside the polls: its failure is shown, and its
  // success clears a failure shown before (the server answers again).
  function asked(load) {
    load().then(() => showError("")).catch((e) => showError(e.message));
  }

  function setLive(text, kind) {
    const live = document.getElementById("live");
    live.textContent = text;
    live.className = `live ${kind || ""}`;
  }

  // -- talking to the server --------------------------------------------------------------
  async function api(path, pairs) {
    const query = new URLSearchParams(pairs.filter(([, v]) => v !== null && v !== undefined));
    const reply = await fetch(`${path}?${query}`, { cache: "no-store" });
    let body;
    try {
      body = await reply.json();
    } catch (e) {
      throw new Error(`${path}: ${reply.status} ${reply.statusText}`);
    }
    if (!reply.ok) throw new Error(body.error || `${reply.status} ${reply.statusText}`);
    return body;
  }

  // A poll rebuilds what it shows: keyboard focus on a rebuilt element (a project's link,
  // a status filter, a trial's checkbox) goes to its twin in the new one, not to the page.
  function focusKey(el) {
    if (!el || el === document.body || !main.contains(el)) return null;
    const row = el.closest("[data-trial]");
    return [el.tagName, el.id, el.getAttribute("href"), el.getAttribute("name"), el.value,
      row ? row.getAttribute("data-trial") : ""].join("\u0000");
  }

  function refocus(key) {
    const now = document.activeElement;
    if (!key || (now && now !== document.body && document.contains(now))) return;
    for (const el of main.getElementsByTagName(key.split("\u0000", 1)[0])) {
      if (focusKey(el) === key) { el.focus(); return; }
    }
  }

  // Runs step() now and again after the interval it returns, until it says the search is
  // finished. A failed step is shown and retried.
  function poll(step) {
    async function tick() {
      let wait = 5;
      const focused = focusKey(document.activeElement);
      try {
        const got = await step();
        refocus(focused);
        showError("");
        if (got.finished) {
          setLive(`finished: ${got.finished}`, "finished");
          return;
        }
        wait = got.interval;
        setLive(`live, updated ${new Date().toLocaleTimeString()}`);
      } catch (e) {
        showError(e.message);
        setLive("not updating: retrying", "failing");
      }
      window.setTimeout(tick, wait * 1000);
    }
    tick();
  }

  // -- the projects -----------------------------------------------------------------------
  function indexPage() {
    document.title = "hpstore dashboard";
    const body = h("tbody");
    const first = h("select", { id: "compare-a" });
    const second = h("select", { id: "compare-b" });
    const go = h("a", { id: "compare-go", href: "/compare" }, "Compare");
    const choose = () => go.setAttribute("href", href("/compare", { a: first.value, b: second.value }));
    first.addEventListener("change", choose);
    second.addEventListener("change", choose);
    const head = ["project", "objective", "trials", "per status", "best", "running",
      "steered", "stopped early", "last activity", "state"];
    const list = h("table", { id: "projects" }, h("thead", {}, h("tr", {}, head.map(
      (c) => h("th", { text: c })))), body);
    main.replaceChildren(h("h1", { text: "Projects" }), h("div", { class: "scroll" }, list),
      h("section", { id: "compare" }, h("h2", { text: "Compare two projects" }),
        h("p", { class: "controls" }, first, " against ", second, " ", go)));
    let names = "";
    poll(async () => {
      const d = await api("/api/projects", []);
      document.getElementById("location").textContent = d.location;
      body.replaceChildren(...d.projects.map((p) => h("tr", { "data-project": p.name },
        h("td", {}, h("a", { href: href("/project", { p: p.name }), text: p.name })),
        h("td", { text: p.objective }),
        h("td", { class: "progress", text: `${p.total}: ${progress(p)}` }),
        h("td", {}, counts(p.counts)),
        h("td", {}, p.best ? h("a", {
          href: href("/trial", { p: p.name, t: p.best.trial_id }),
          text: `${score(p.best.score)} (trial ${p.best.trial_id})`,
        }) : ""),
        h("td", { text: String(p.running) }),
        h("td", { class: "steered", text: steered(p) }),
        h("td", { text: p.stopped_early ? String(p.stopped_early.trials) : "" }),
        h("td", { text: lastActivity(p.last_activity, d.now, p.finished) }),
        h("td", { text: p.finished || (p.running > p.interrupted ? "running"
          : p.interrupted ? `${p.interrupted} interrupted (worker gone): run again when a worker asks`
          : p.workers ? "waiting for a trial" : "no worker alive (paused, or finished)") }))));
      if (!d.projects.length) {
        body.replaceChildren(h("tr", {}, h("td", { colspan: head.length,
          text: "This file holds no project yet." })));
      }
      const now = d.projects.map((p) => p.name);
      if (JSON.stringify(now) !== names) {
        names = JSON.stringify(now);
        for (const [select, pick] of [[first, 0], [second, 1]]) {
          select.replaceChildren(...now.map((n) => h("option", { value: n, text: n })));
          select.selectedIndex = Math.min(pick, now.length - 1);
        }
        choose();
      }
      return { interval: d.interval, finished: d.finished ? "every project is finished" : null };
    });
  }

  // -- one project ------------------------------------------------------------------------
  function projectPage() {
    const state = {
      name: params.get("p"), seq: null, obs: null, generation: null, version: null,
      statuses: new Set(), sort: "number", desc: false, page: 1, size: 50,
      selected: new Set(), plotsAt: 0, plotsEvery: 2000, plotsDirty: true, events: [],
      quiet: 0,
    };
    const title = h("h1", { id: "title" });
    const meta = h("p", { id: "meta", class: "meta" });
    const best = h("p", { id: "best", class: "meta" });
    const steering = h("p", { id: "steering", class: "meta" });
    const running = h("div", { id: "running" });
    const downloads = h("p", { id: "downloads", class: "meta" });
    const plotBoxes = {};
    const plotSections = [["history", "Optimisation history"],
      ["hyperparameters", "Score against each hyperparameter"],
      ["parallel", "Parallel coordinates"], ["curves", "Learning curves"],
      ["timeline", "Runs per worker"]].map(([key, name]) => {
      plotBoxes[key] = h("div", { class: "plot-box" }, h("p", { class: "empty", text: "Loading…" }));
      return h("section", { id: key }, h("h2", { text: name }), plotBoxes[key]);
    });
    // the trials table and its controls
    const filters = h("span", { id: "status-filter" });
    const sort = h("select", { id: "sort" }, [["number", "number"], ["best", "best first"],
      ["score", "score"], ["ended", "end time"]].map(([v, t]) => h("option", { value: v, text: t })));
    const desc = h("input", { type: "checkbox", id: "desc" });
    const size = h("select", { id: "size" }, [25, 50, 100, 200, 500].map(
      (n) => h("option", { value: n, text: `${n} a page`, selected: n === 50 })));
    const pager = h("div", { class: "pager" });
    const tableBox = h("div", { class: "scroll", id: "trials-table" });
    const pickNote = h("span", { id: "pick-note", class: "note" });  // (kept until a tick)
    const events = h("ul", { class: "events", id: "events" });
    sort.addEventListener("change", () => { state.sort = sort.value; state.page = 1; asked(loadTable); });
    desc.addEventListener("change", () => { state.desc = desc.checked; state.page = 1; asked(loadTable); });
    size.addEventListener("change", () => { state.size = Number(size.value); state.page = 1; asked(loadTable); });
    main.replaceChildren(
      h("p", {}, h("a", { href: "/", text: "All projects" })), title, meta, best, steering,
      running,
      downloads, h("nav", { class: "sections" }, [...plotSections.map((s) => s.id), "trials", "events"]
        .map((id) => h("a", { href: `#${id}`, text: id }))),
      ...plotSections,
      h("section", { id: "trials" }, h("h2", { text: "Trials" }),
        h("div", { class: "controls" }, h("span", { text: "status:" }), filters,
          h("label", {}, "sort by ", sort), h("label", {}, desc, " reversed"),
          h("label", {}, "rows ", size), pickNote),
        pager, tableBox),
      h("section", { id: "events" }, h("h2", { text: "Status changes since the page opened" }),
        events));

    function filterBoxes(countsBy) {
      filters.replaceChildren(...STATUSES.map((s) => {
        const box = h("input", { type: "checkbox", value: s, checked: state.statuses.has(s) });
        box.addEventListener("change", () => {
          if (box.checked) state.statuses.add(s); else state.statuses.delete(s);
          state.page = 1;
          asked(loadTable);
        });
        return h("label", { class: statusClass(s) }, box, ` ${s} (${countsBy[s] || 0})`);
      }));
    }

    async function loadTable() {
      const pairs = [["p", state.name], ["sort", state.sort], ["desc", state.desc ? "1" : "0"],
        ["page", state.page], ["size", state.size], ...[...state.statuses].map((s) => ["status", s])];
      const d = await api("/api/trials", pairs);
      if (state.page > d.pages) { state.page = d.pages; return loadTable(); }
      const rows = d.rows.map((r) => {
        const pick = h("input", { type: "checkbox", title: "draw its curve",
          checked: state.selected.has(r.trial_id) });
        pick.addEventListener("change", () => {
          if (pick.checked && state.selected.size >= MAX_SELECTED) {
            pick.checked = false;  // the plots draw this many curves at most
            pickNote.textContent = `At most ${MAX_SELECTED} curves are drawn at once: untick one first.`;
            return;
          }
          pickNote.textContent = "";
          if (pick.checked) state.selected.add(r.trial_id); else state.selected.delete(r.trial_id);
          pick.closest("tr").classList.toggle("selected", pick.checked);
          asked(loadPlots);
        });
        const cells = r.cells.map((c, i) => (i === 0
          ? h("td", {}, h("a", { href: href("/trial", { p: d.name, t: r.trial_id }), text: c }))
          : h("td", { class: i === 1 ? statusClass(r.status) : null, text: c })));
        const marks = [state.selected.has(r.trial_id) ? "selected" : "", r.retired ? "retired" : ""];
        return h("tr", { class: marks.filter(Boolean).join(" ") || null,
          "data-trial": r.trial_id }, h("td", {}, pick), cells,
        h("td", { title: r.title || null, text: r.message }));
      });
      tableBox.replaceChildren(rows.length ? table(["", ...d.columns], rows, { id: "trials-list" })
        : h("p", { class: "empty", text: "No trial matches." }));
      const go = (page) => h("button", { type: "button", disabled: page < 1 || page > d.pages || page === d.page,
        on: { click: () => { state.page = page; asked(loadTable); } } });
      pager.replaceChildren(go(1), go(d.page - 1), h("span", {
        id: "page-of", text: `page ${d.page} of ${d.pages} (${d.total} trials)` }), go(d.page + 1), go(d.pages));
      ["first", "previous", null, "next", "last"].forEach((label, i) => {
        if (label) pager.children[i].textContent = label;
      });
      return d;
    }

    async function loadPlots() {
      const sent = [...state.selected].slice(0, MAX_SELECTED);
      const d = await api("/api/plots", [["p", state.name], ...sent.map((t) => ["select", t])]);
      // a trial the search no longer holds (its project replaced) is no longer selected
      // (of those this request sent: others were ticked while it was on its way)
      const kept = new Set(d.selected);
      for (const t of sent) {
        if (kept.has(t) || !state.selected.has(t)) continue;
        state.selected.delete(t);
        const row = tableBox.querySelector(`tr[data-trial="${CSS.escape(t)}"]`);
        if (row) { row.classList.remove("selected"); row.querySelector("input").checked = false; }
      }
      for (const section of d.sections) plotBoxes[section.key].replaceChildren(drawn(section.html));
      state.plotsAt = Date.now();
      state.plotsDirty = false;
      // drawing the plots takes the server's time, which the workers may need: a running
      // search is drawn again after fifty times what the last drawing took (2% of a core)
      if (d.seconds > 0) state.plotsEvery = Math.max(2000, 50 * 1000 * d.seconds);
    }

    function header(d) {
      document.title = `${d.name} - hpstore dashboard`;
      document.getElementById("location").textContent = d.location;
      title.textContent = d.name;
      const parts = [`objective ${d.objective}`, `oracle ${d.oracle}`,
        `trials ${d.total}, ${progress(d)}`];
      if (d.per_minute && !d.finished) parts.push(`${d.per_minute.toFixed(1)} trials/min`);
      if (d.minutes_left !== null && d.minutes_left !== undefined && !d.finished) {
        parts.push(`about ${d.minutes_left.toFixed(1)} min left`);
      }
      parts.push(`${d.workers} worker(s) alive`, `last activity ${lastActivity(d.last_activity, d.now, d.finished)}`);
      if (d.stopped_early) {
        parts.push(`stopped early: ${d.stopped_early.said}`);
      }
      meta.replaceChildren(parts.join("; "), " ", counts(d.counts));
      if (d.best_trial) {
        best.replaceChildren("Best: ", h("a", { id: "best-trial",
          href: href("/trial", { p: d.name, t: d.best_trial.trial_id }),
          text: `trial ${d.best_trial.trial_id}` }), ", score ",
        h("strong", { id: "best-score", text: score(d.best_trial.score) }), " with ",
        d.best_trial.values.map(([k, v]) => `${k}=${v}`).join(", "));
      } else best.textContent = "No trial has a score yet.";
      const steer = steered(d);
      steering.textContent = steer ? `Steered: ${steer}` : "";
      steering.hidden = !steer;
      running.replaceChildren(...(d.running_trials.length
        ? [h("p", { class: "meta", text: `Running (${d.running_trials.length}):` }),
          h("ul", {}, d.running_trials.map((t) => h("li", {}, `${t.tuner_id}: `,
            h("a", { href: href("/trial", { p: d.name, t: t.trial_id }), text: `trial ${t.trial_id}` }),
            ` for ${Math.max(0, Math.round(d.now - (t.started || d.now)))} s, ${t.values}`,
            t.interrupted ? " (its worker is gone: interrupted, it runs again when a worker asks)" : "")))]
        : []));
      downloads.replaceChildren("Every trial: ",
        h("a", { href: href("/download", { p: d.name, format: "csv" }), download: "", text: "CSV" }),
        " ", h("a", { href: href("/download", { p: d.name, format: "json" }), download: "", text: "JSON" }));
      filterBoxes(d.counts);
    }

    function addEvents(changes) {
      for (const c of changes) {
        if (c.from === c.to) { // retired or restored: the status stays, the log says why
          state.events.unshift(h("li", {}, `${c.time} trial `,
            h("a", { href: href("/trial", { p: state.name, t: c.trial_id }), text: c.trial_id }),
            `: ${c.message || "marked"}`));
          continue;
        }
        state.events.unshift(h("li", {}, `${c.time} trial `,
          h("a", { href: href("/trial", { p: state.name, t: c.trial_id }), text: c.trial_id }),
          `: ${c.from || "new"} → `, h("span", { class: statusClass(c.to), text: c.to }),
          c.tuner_id ? ` on ${c.tuner_id}` : "",
          c.score !== null && c.to === "COMPLETED" ? `, score ${score(c.score)}` : "",
          c.message ? ` (${c.message})` : ""));
      }
      state.events.length = Math.min(state.events.length, 200);
      events.replaceChildren(...state.events);
    }

    poll(async () => {
      const pairs = [["p", state.name]];
      if (state.seq !== null) {
        pairs.push(["seq", state.seq], ["obs", state.obs], ["generation", state.generation]);
      }
      const d = await api("/api/poll", pairs);
      if (d.fresh) {
        state.events = [];
        state.generation = d.generation;
      }
      state.name = d.name;
      state.seq = d.seq;
      state.obs = d.obs;
      header(d);
      addEvents(d.changes);
      const changed = d.fresh || d.changes.length > 0 || d.version !== state.version;
      state.version = d.version;
      // a note changes no status: the table is also read again after ten quiet polls
      state.quiet = changed ? 0 : state.quiet + 1;
      if (changed || state.quiet >= 10) {
        state.quiet = 0;
        await loadTable();
      }
      if (changed) state.plotsDirty = true;
      const every = Math.max(state.plotsEvery, 2000 * d.interval);
      if (state.plotsDirty && (d.finished || Date.now() - state.plotsAt >= every)) await loadPlots();
      return { interval: d.more ? 0 : d.interval, finished: d.finished };
    });
  }

  // -- one trial ----------------------------------------------------------------------------
  function trialPage() {
    const state = { name: params.get("p"), given: params.get("t"), seq: null, obs: null,
      generation: null, trialId: null, status: null };
    const box = h("div", { id: "trial" });
    main.replaceChildren(box);

    async function load() {
      const d = await api("/api/trial", [["p", state.name], ["t", state.given]]);
      state.trialId = d.trial_id;
      state.status = d.status;
      state.name = d.name;
      document.title = `trial ${d.trial_id} of ${d.name} - hpstore dashboard`;
      box.replaceChildren(...[
        h("p", {}, h("a", { href: href("/project", { p: d.name }), text: `Project ${d.name}` })),
        h("h1", { id: "title", text: `Trial ${d.trial_id}${d.retired ? " (retired)" : ""}` }),
        h("p", { class: "meta", text: `number ${d.number}; objective ${d.objective}` }),
        h("section", { id: "facts" }, h("table", { class: "facts" }, h("tbody", {},
          d.facts.map(([k, v]) => h("tr", {}, h("td", { text: k }),
            h("td", { class: k === "status" ? statusClass(v) : null, text: v })))))),
        d.note ? h("section", { id: "note" }, h("h2", { text: "Note" }),
          h("p", { class: "note-text", text: d.note })) : null,
        h("section", { id: "values" }, h("h2", { text: "Hyperparameters" }),
          d.values.length ? table(["name", "value"], d.values.map(([k, v]) => h("tr", {},
            h("td", { text: k }), h("td", { text: v })))) : h("p", { class: "empty", text: "None." })),
        d.message ? h("section", { id: "message" }, h("h2", { text: "Message" }),
          h("pre", { class: "message", text: d.message })) : null,
        h("section", { id: "metrics" }, h("h2", { text: "Metrics per step" }), drawn(d.plot),
          d.history.total > d.history.rows.length ? h("p", { class: "note",
            text: `The ${d.history.rows.length} rows of the latest steps, of ${d.history.total}; hpstore show prints every one.` }) : null,
          d.history.rows.length ? h("div", { class: "scroll" }, table(d.history.columns,
            d.history.rows.map((r) => h("tr", {}, r.map((c) => h("td", { text: c })))))) : null),
        h("section", { id: "status-log" }, h("h2", { text: "Status changes" }),
          h("div", { class: "scroll" }, table(["time", "from", "to", "worker", "pid", "message"],
            d.changes.map((c) => h("tr", {},
              h("td", { text: c.time }), h("td", { text: c.from || "" }),
              h("td", { class: statusClass(c.to), text: c.to }), h("td", { text: c.tuner_id || "" }),
              h("td", { text: c.pid === null ? "" : String(c.pid) }),
              h("td", { title: c.message_full || null, text: c.message || "" }))))))].filter(Boolean));
      return d;
    }

    poll(async () => {
      if (state.trialId === null) await load();
      const pairs = [["p", state.name], ["trial", state.trialId]];
      if (state.seq !== null) {
        pairs.push(["seq", state.seq], ["obs", state.obs], ["generation", state.generation]);
      }
      const d = await api("/api/poll", pairs);
      const mine = d.changes.some((c) => c.trial_id === state.trialId) || d.values.length > 0;
      if (!d.fresh && mine) await load();
      if (d.fresh) state.generation = d.generation;
      state.seq = d.seq;
      state.obs = d.obs;
      document.getElementById("location").textContent = d.location;
      const over = ["COMPLETED", "FAILED", "STOPPED"].includes(state.status);
      return { interval: d.more ? 0 : d.interval,
        finished: d.finished || (over ? `trial ${state.trialId} is ${state.status}` : null) };
    });
  }

  // -- two projects ---------------------------------------------------------------------------
  function comparePage() {
    const names = [params.get("a"), params.get("b")];
    const title = h("h1", { id: "title", text: "Two projects compared" });
    const plot = h("div", { id: "compare-plot" });
    const facts = h("div", { id: "compare-facts", class: "scroll" });
    main.replaceChildren(h("p", {}, h("a", { href: "/", text: "All projects" })), title, facts,
      h("section", { id: "history" }, h("h2", { text: "Optimisation histories" }), plot));
    poll(async () => {
      const d = await api("/api/compare", [["a", names[0]], ["b", names[1]]]);
      document.title = `${d.projects[0].name} and ${d.projects[1].name} - hpstore dashboard`;
      document.getElementById("location").textContent = d.location;
      facts.replaceChildren(table(["project", "objective", "trials", "per status", "best"],
        d.projects.map((p) => h("tr", {},
          h("td", {}, h("a", { href: href("/project", { p: p.name }), text: p.name })),
          h("td", { text: p.objective }), h("td", { text: String(p.total) }),
          h("td", {}, counts(p.counts)),
          h("td", { text: p.best ? `${score(p.best.score)} (trial ${p.best.trial_id})` : "" })))));
      plot.replaceChildren(drawn(d.html));
      const done = d.projects.every((p) => p.finished);
      return { interval: d.interval, finished: done ? "both projects are finished" : null };
    });
  }

  const pages = { "/": indexPage, "/project": projectPage, "/trial": trialPage,
    "/compare": comparePage };
  (pages[window.location.pathname] || indexPage)();
})();
