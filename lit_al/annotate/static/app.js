// The labeling page. Every piece of data from the server goes into the page through
// textContent or a DOM node, never as HTML: a text may contain anything.
"use strict";

(() => {
  const KEYS = "123456789abcdefghijklmnopqrstuvwxyz";
  const token = new URLSearchParams(location.search).get("token") || "";
  // the page's secret, from this page's own HTML: another site can neither read it nor send it
  const pageSecret = document.querySelector('meta[name="lit-al-page"]').content;
  const $ = (id) => document.getElementById(id);

  function randomId() {
    // getRandomValues works on plain http too (randomUUID needs a secure context)
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // One client per tab: a reload keeps its id (and so its item), a second tab gets its own.
  let client = sessionStorage.getItem("lit_al.client");
  if (!client) {
    client = randomId();
    sessionStorage.setItem("lit_al.client", client);
  }

  let view = null;        // the server's last answer to "what do I see now"
  let selected = new Set(); // multi-label toggles of the current item
  let selectedFor = null;   // ... and which item they belong to
  let busy = false;        // one request at a time: a held key must not answer twice
  let polling = null;
  let waiting = null;      // the next try to take an item while every one is held

  function withToken(path) {
    return token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
  }

  function postOptions(body) {
    return { method: "POST", body: JSON.stringify(body),
             headers: { "X-Lit-Al-Token": token, "X-Lit-Al-Page": pageSecret, "Content-Type": "application/json" } };
  }

  async function api(path, body) {
    const options = body === undefined ? { headers: { "X-Lit-Al-Token": token } } : postOptions(body);
    const response = await fetch(path, options);
    let payload = {};
    try { payload = await response.json(); } catch (e) { /* not JSON: reported below */ }
    if (!response.ok) throw new Error(payload.error || `${response.status} ${response.statusText}`);
    return payload;
  }

  function say(text, kind) {
    const box = $("message");
    box.textContent = text || "";
    box.className = kind || "";
  }

  function annotator() {
    const name = $("annotator").value.trim();
    return name || null;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function utf16Offsets(text) {
    // the server counts code points, JavaScript strings count UTF-16 units (an emoji is two)
    const offsets = [0];
    for (const char of text) offsets.push(offsets[offsets.length - 1] + char.length);
    return offsets;
  }

  function renderText(text, spans) {
    const box = $("text");
    box.replaceChildren();
    const units = utf16Offsets(text);
    let at = 0;
    for (const [first, last] of spans || []) {
      const start = units[first], end = units[last];
      if (start === undefined || end === undefined) continue;
      if (start < at) continue;
      if (start > at) box.append(document.createTextNode(text.slice(at, start)));
      box.append(element("mark", text.slice(start, end)));
      at = end;
    }
    box.append(document.createTextNode(text.slice(at)));
    box.scrollTop = 0;
  }

  function renderProgress(progress) {
    if (!progress) return;
    $("batch-bar").max = Math.max(progress.batch_size, 1);
    $("batch-bar").value = progress.batch_answered;
    $("batch-count").textContent = `${progress.batch_answered} / ${progress.batch_size}`;
    $("total-bar").max = Math.max(progress.pool_size, 1);
    $("total-bar").value = progress.labeled;
    $("total-count").textContent = `${progress.labeled} / ${progress.pool_size}` +
      (progress.skipped ? ` (${progress.skipped} skipped)` : "");
  }

  function renderLabels(task, item) {
    const box = $("labels");
    box.replaceChildren();
    task.labels.forEach((name, i) => {
      const button = element("button", undefined, "label");
      button.dataset.label = name;
      if (i < KEYS.length) button.append(element("kbd", KEYS[i]));
      button.append(element("span", name));
      if (item.suggestion.includes(name)) button.classList.add("suggested");
      if (item.suggestion.includes(name) && item.low_confidence) button.classList.add("unsure");
      if (task.multi_label) button.setAttribute("aria-pressed", String(selected.has(name)));
      button.addEventListener("click", () => choose(name));
      box.append(button);
    });
  }

  function renderItem(task, item) {
    $("card").hidden = false;
    $("position").textContent = `item ${item.position} of ${view.progress.batch_size} · round ${view.round}`;
    $("item-id").textContent = `id ${item.id}`;
    renderText(item.text, item.highlights);
    const suggestion = $("suggestion");
    suggestion.replaceChildren();
    suggestion.classList.toggle("unsure", Boolean(item.low_confidence));
    if (item.suggestion.length && item.low_confidence) {
      // a coin flip is shown as one: no nudge to accept it
      suggestion.append("the model is unsure: it leans to ", element("strong", item.suggestion.join(", ")),
                        ` (confidence ${Math.round(item.confidence * 100)}%, close to chance): decide yourself`);
    } else if (item.suggestion.length) {
      suggestion.append("model suggests ", element("strong", item.suggestion.join(", ")));
      if (item.confidence !== null) suggestion.append(` (confidence ${Math.round(item.confidence * 100)}%)`);
    } else {
      suggestion.textContent = task.multi_label ? "no suggestion: toggle the labels that apply" : "no suggestion yet";
    }
    const accept = $("accept");
    accept.hidden = !task.multi_label && !item.suggestion.length;
    accept.classList.toggle("primary", !item.low_confidence);
    accept.firstChild.textContent = item.low_confidence ? "accept the guess " : "accept ";
    renderLabels(task, item);
  }

  function renderRound(progress) {
    const box = $("round");
    box.hidden = progress.state === "idle";
    for (const li of box.querySelectorAll("li")) {
      li.className = li.dataset.phase === progress.phase ? "current" : "";
    }
    $("epoch-bar").max = Math.max(progress.max_epochs || 1, 1);
    $("epoch-bar").value = progress.epoch || 0;
    $("epoch-count").textContent = progress.max_epochs ? `${progress.epoch || 0} / ${progress.max_epochs}` : "";
    $("round-log").textContent = (progress.log || []).slice(-6).join("\n");
  }

  function render(next) {
    view = next;
    const task = view.task;
    $("run").textContent = task.run_dir;
    if (!$("annotator").value && task.annotator) $("annotator").value = task.annotator;
    renderProgress(view.progress);
    $("undo").disabled = !view.can_undo;
    $("card").hidden = view.mode !== "item";
    $("next").hidden = !["batch_done", "training", "finished"].includes(view.mode);
    $("train").hidden = view.mode !== "batch_done";
    $("reclaim").hidden = !(view.mode === "waiting" && view.reclaimable > 0);
    $("train").disabled = false;
    if (view.mode === "item") {
      const item = view.item;
      if (selectedFor !== item.id) {  // a new item starts from the model's suggestion
        selected = new Set(task.multi_label ? item.suggestion : []);
        selectedFor = item.id;
      }
      renderItem(task, item);
      say("");
    } else {
      $("next-message").textContent = view.message || "";
      say(["waiting", "open"].includes(view.mode) ? view.message : "");
    }
    renderRound(view.round_progress);
    if (view.mode === "training") follow();
    clearTimeout(waiting);  // one retry pending at a time, however the last view came
    if (view.mode === "waiting") waiting = setTimeout(() => load(), 5000);
  }

  async function load(reclaim) {
    // taking an item leases it: a POST, like every request that changes what others see
    try {
      render(await api(withToken("/api/take"), { client, annotator: annotator(), reclaim: Boolean(reclaim) }));
    } catch (error) {
      say(error.message, "error");
    }
  }

  async function send(path, body) {
    if (busy) return;
    busy = true;
    try {
      const next = await api(withToken(path), body);
      render(next);
      if (next.unchanged) say("already recorded: nothing changed", "note");
    } catch (error) {
      say(error.message, "error");
    } finally {
      busy = false;
    }
  }

  function answer(labels) {
    if (!view || view.mode !== "item") return;
    return send("/api/answer", { client, id: view.item.id, labels, annotator: annotator() });
  }

  function skip(reason) {
    if (!view || view.mode !== "item") return;
    return send("/api/answer", { client, id: view.item.id, skip: reason, annotator: annotator() });
  }

  function choose(name) {
    if (!view || view.mode !== "item") return;
    if (!view.task.multi_label) return answer([name]);
    if (selected.has(name)) selected.delete(name); else selected.add(name);
    renderLabels(view.task, view.item);
  }

  function accept() {
    if (!view || view.mode !== "item") return;
    if (view.task.multi_label) return answer(view.task.labels.filter((name) => selected.has(name)));
    if (view.item.suggestion.length) return answer(view.item.suggestion);
  }

  function undo() {
    if (view && view.can_undo) return send("/api/undo", { client, annotator: annotator() });
  }

  async function train() {
    $("train").disabled = true;
    try {
      renderRound(await api(withToken("/api/round"), {}));
      follow();
    } catch (error) {
      $("train").disabled = false;
      say(error.message, "error");
    }
  }

  function follow() {
    if (polling) return;
    $("card").hidden = true;
    $("next").hidden = false;
    $("train").hidden = true;
    $("next-message").textContent = "training on every label, then proposing the next batch…";
    const tick = async () => {
      try {
        const progress = await api(withToken("/api/round"));
        renderRound(progress);
        if (progress.state === "running") {
          polling = setTimeout(tick, 1000);
          return;
        }
        polling = null;
        await load();
        if (progress.state === "failed") say(progress.message, "error");  // after load: it clears the message
      } catch (error) {
        polling = null;
        say(error.message, "error");
      }
    };
    polling = setTimeout(tick, 500);
  }

  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    let handled = true;
    if (key === "Enter") accept();
    else if (key === " ") skip("skip");
    else if (key === "?") skip("not sure");
    else if (key === "Backspace") undo();
    else if (view && view.mode === "item" && KEYS.indexOf(key.toLowerCase()) >= 0 &&
             KEYS.indexOf(key.toLowerCase()) < view.task.labels.length && key.length === 1) {
      choose(view.task.labels[KEYS.indexOf(key.toLowerCase())]);
    } else handled = false;
    if (handled) event.preventDefault();
  });

  $("accept").addEventListener("click", accept);
  $("skip").addEventListener("click", () => skip("skip"));
  $("unsure").addEventListener("click", () => skip("not sure"));
  $("undo").addEventListener("click", undo);
  $("train").addEventListener("click", train);
  $("reclaim").addEventListener("click", () => load(true));
  $("annotator").addEventListener("change", () => localStorage.setItem("lit_al.annotator", $("annotator").value.trim()));
  $("annotator").value = localStorage.getItem("lit_al.annotator") || "";
  // a closed tab gives its item back at once instead of when its lease expires (keepalive: the
  // request outlives the page, and unlike sendBeacon it can carry the page's secret)
  window.addEventListener("pagehide", () => {
    fetch(withToken("/api/release"), { ...postOptions({ client }), keepalive: true }).catch(() => {});
  });
  load();
})();
