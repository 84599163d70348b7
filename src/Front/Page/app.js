// Bulk's page: compose a campaign, get the answer at once, watch it go out. No build step, no CDN.
const $ = (id) => document.getElementById(id);
const form = $("campaign-form");
const fields = ["from", "subject", "text", "html", "recipients"];
const finished = new Set(["completed", "completed_with_failures", "cancelled"]);
let events = null;
let current = null;
let failuresShown = -1;

// ---- access: with API keys configured every call carries "Authorization: Bearer", kept in this tab only ----

const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("bulk.apiKey") ?? "";
$("access").hidden = keyInput.value === "";
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("bulk.apiKey", keyInput.value.trim());
  $("access-help").textContent = "This server needs an API key. It is kept in this browser tab only.";
  loadRecent();
  // Another key may see another set of campaigns: the one on show is asked for again, even one the last key could not see.
  if (location.hash.length > 1) openCampaign(location.hash.slice(1));
});

async function api(path, options = {}) {
  const headers = new Headers(options.headers ?? {});
  const key = keyInput.value.trim();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("access").hidden = false;
    $("access-help").textContent = key ? "This API key was refused; check it." : "This server needs an API key. It is kept in this browser tab only.";
  }
  return response;
}

// ---- recipients: one address per line, or CSV with a header row whose columns become placeholder data ----

function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell); cell = "";
      if (row.some((v) => v.trim() !== "")) rows.push(row);
      row = [];
    } else cell += c;
  }
  row.push(cell);
  if (row.some((v) => v.trim() !== "")) rows.push(row);
  return rows;
}

export function parseRecipients(text) {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  if (lines.length === 0) return [];
  const header = parseCsv(lines[0])[0].map((h) => h.trim());
  const emailColumn = header.findIndex((h) => h.toLowerCase() === "email");
  if (header.length > 1 && emailColumn >= 0) {
    return parseCsv(text).slice(1).map((cells) => {
      const data = {};
      header.forEach((name, i) => { if (i !== emailColumn && name !== "") data[name] = (cells[i] ?? "").trim(); });
      return { email: (cells[emailColumn] ?? "").trim(), data };
    });
  }
  return lines;
}

// ---- the same checks the server makes, so most mistakes are caught before sending ----

const addressPattern = /^[^\s@<>]+@[^\s@<>]+$/;
const mailboxPattern = /^(?:[^<>]*<\s*[^\s@<>]+@[^\s@<>]+\s*>|[^\s@<>]+@[^\s@<>]+)$/;

function check(body) {
  const errors = {};
  if (!body.from) errors.from = "The sender is required, e.g. News <news@example.com>.";
  else if (!mailboxPattern.test(body.from)) errors.from = `'${body.from}' is not a mailbox, e.g. News <news@example.com>.`;
  if (!body.subject) errors.subject = "The subject is required.";
  else if (/[\r\n\0]/.test(body.subject)) errors.subject = "The subject must be one line.";
  if (!body.text && !body.html) errors.text = "A text or an HTML body is required (or both).";
  if (body.recipients.length === 0) errors.recipients = "At least one recipient is required.";
  else {
    const bad = body.recipients
      .map((r, i) => [i, typeof r === "string" ? r : r.email])
      .filter(([, email]) => !addressPattern.test(email));
    if (bad.length > 0) {
      errors.recipients = bad.slice(0, 5).map(([i, email]) => `Recipient ${i + 1}: '${email}' is not an email address.`).join("\n")
        + (bad.length > 5 ? `\n…and ${bad.length - 5} more.` : "");
    }
  }
  return errors;
}

function showErrors(errors) {
  for (const name of fields) {
    $(`${name}-error`).textContent = errors[name] ?? "";
    $(name).setAttribute("aria-invalid", errors[name] ? "true" : "false");
  }
  const first = fields.find((name) => errors[name]);
  if (first) $(first).focus();
}

// The server names fields like "from", "recipients[3].email", "headers.X-Tag" or "body".
function fieldOf(key) {
  const root = key.split(/[.[]/)[0];
  return fields.includes(root) ? root : null;
}

function serverErrors(problem) {
  const errors = {};
  const other = [];
  for (const [key, messages] of Object.entries(problem.errors ?? {})) {
    const field = fieldOf(key);
    const text = messages.join(" ");
    const index = /^recipients\[(\d+)\]/.exec(key);
    const line = index ? `Recipient ${Number(index[1]) + 1}: ${text}` : text;
    if (field) errors[field] = errors[field] ? `${errors[field]}\n${line}` : line;
    else other.push(`${key}: ${text}`);
  }
  return { errors, other };
}

function formStatus(text, kind) {
  const status = $("form-status");
  status.textContent = text;
  status.className = kind ?? "";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    from: $("from").value.trim(),
    subject: $("subject").value.trim(),
    text: $("text").value.trim() || undefined,
    html: $("html").value.trim() || undefined,
    recipients: parseRecipients($("recipients").value),
  };
  const errors = check(body);
  showErrors(errors);
  if (Object.keys(errors).length > 0) {
    formStatus("Please correct the marked fields.", "bad");
    return;
  }

  const send = $("send");
  send.disabled = true;
  formStatus("Sending…");
  try {
    const response = await api("/campaigns", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 202) {
      const dropped = answer.duplicatesDropped ? ` (${answer.duplicatesDropped} duplicate addresses dropped)` : "";
      formStatus(`Accepted, ${answer.total} recipients${dropped}.`, "ok");
      openCampaign(answer.id);
      loadRecent();
    } else if (answer.errors) {
      const { errors: byField, other } = serverErrors(answer);
      showErrors(byField);
      formStatus(other.length > 0 ? other.join("\n") : (answer.title ?? "The campaign was refused."), "bad");
    } else {
      const retry = response.headers.get("Retry-After");
      formStatus(`${answer.title ?? `Error ${response.status}`}: ${answer.detail ?? ""}${retry ? ` Try again in ${retry} s.` : ""}`, "bad");
    }
  } catch (error) {
    formStatus(`Could not reach the server: ${error.message}`, "bad");
  } finally {
    send.disabled = false;
  }
});

$("recipients-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (file) $("recipients").value = await file.text();
});

// ---- the live view of one campaign, fed by Server-Sent Events ----

function duration(seconds) {
  if (!isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

// Subjects and senders are whatever a client posted (a subject may well be "<img onerror=…>"): textContent only.
function showText(element, text, placeholder) {
  element.textContent = text || placeholder;
  element.classList.toggle("unknown", !text);
}

function render(status) {
  current = status;
  showText($("view-subject"), status.subject, "(subject not recorded)");
  showText($("view-from"), status.from, "an unrecorded sender");
  $("view-status").textContent = status.status.replaceAll("_", " ");
  const done = status.delivered + status.failed + (status.suppressed ?? 0);
  const percent = status.total > 0 ? Math.floor((done * 100) / status.total) : 0;
  $("progress").value = percent;
  $("progress-text").textContent = `${percent} %`;
  $("count-delivered").textContent = status.delivered;
  $("count-failed").textContent = status.failed;
  $("count-deferred").textContent = status.deferred;
  $("count-suppressed").textContent = status.suppressed ?? 0;
  $("count-pending").textContent = status.pending;
  $("count-rate").textContent = status.ratePerSecond > 0 ? `${status.ratePerSecond}/s` : "–";
  const over = finished.has(status.status);
  $("count-eta").textContent = over ? "–" : status.ratePerSecond > 0 ? duration(status.pending / status.ratePerSecond) : "–";
  const held = status.status === "held";
  $("pause").disabled = over || held || status.status === "paused";
  $("resume").disabled = !held && status.status !== "paused";
  $("cancel").disabled = over;
  showHeld(held ? status : null);
  if (status.status === "cancelled") $("view-message").textContent = `Cancelled: ${status.pending} recipients were never sent.`;
  if (status.failed !== failuresShown) loadFailures(status.id, status.failed);
}

// Unknown here, or another API key's campaign (the server answers both alike): nothing of what was shown stays.
function renderUnknown(id) {
  render({ id, status: "unknown", total: 0, delivered: 0, failed: 0, deferred: 0, suppressed: 0, pending: 0, ratePerSecond: 0 });
  current = null;
  for (const field of ["view-subject", "view-from"]) showText($(field), "", "…");
  for (const button of ["pause", "resume", "cancel"]) $(button).disabled = true;
  $("view-message").textContent = `No campaign ${id} for this API key: it is unknown here, or another key's.`;
}

// The relay's reply is text from a remote server: it goes in with textContent only.
function showHeld(status) {
  $("held-notice").hidden = status === null;
  if (status === null) return;
  const reply = (status.heldReason ?? "").trim().replace(/\.+$/, "") || "no reason given";
  const since = status.heldAt ? ` since ${new Date(status.heldAt).toLocaleString()}` : "";
  $("held-title").textContent = `Held${since}: nothing is being sent.`;
  $("held-text").textContent = `The relay refused the sender: ${reply}. Fix the relay or sender, then resume.`;
}

async function loadFailures(id, count) {
  failuresShown = count;
  const table = $("failures");
  if (count === 0) { table.hidden = true; $("no-failures").hidden = false; return; }
  const response = await api(`/campaigns/${id}/failures?limit=100`);
  if (!response.ok) return;
  const page = await response.json();
  const rows = page.failures.map((f) => {
    const tr = document.createElement("tr");
    for (const value of [f.index + 1, f.email, f.reply]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = false;
  $("no-failures").hidden = true;
  if (page.count > page.failures.length) $("no-failures").textContent = `Showing ${page.failures.length} of ${page.count}.`;
}

// ---- the delivery rate over time: one sample a second from what the live events said, drawn as an inline SVG ----

const chart = { samples: [], last: null, timer: null, max: 60 };

function resetChart() {
  clearInterval(chart.timer);
  Object.assign(chart, { samples: [], last: null, timer: null });
  drawChart();
}

function perSecond(rate) {
  return rate >= 10 ? Math.round(rate).toString() : rate.toFixed(1).replace(/\.0$/, "");
}

// Mails delivered since the last sample, per second of this page's clock: the server's events come only on change.
function sampleRate(status) {
  const now = performance.now();
  if (chart.last !== null) {
    const seconds = (now - chart.last.at) / 1000;
    if (seconds < 0.2) return;
    chart.samples.push(Math.max(0, status.delivered - chart.last.delivered) / seconds);
    if (chart.samples.length > chart.max) chart.samples.shift();
    drawChart();
  }
  chart.last = { at: now, delivered: status.delivered };
}

function chartEvent(status, ended) {
  if (chart.last === null) {
    sampleRate(status);
    if (!ended) chart.timer = setInterval(() => { if (current) sampleRate(current); }, 1000);
  } else if (ended) {
    sampleRate(status);
    clearInterval(chart.timer);
    chart.timer = null;
  }
}

function drawChart() {
  const width = 300, height = 60, top = 4;
  const samples = chart.samples;
  const peak = Math.max(1, ...samples);
  // The axis is the last minute, but a campaign of a few seconds still gets a line across a good part of it.
  const step = width / (Math.min(chart.max, Math.max(10, samples.length)) - 1);
  const offset = width - (samples.length - 1) * step;
  const points = samples.map((rate, i) => `${(offset + i * step).toFixed(1)},${(height - (rate / peak) * (height - top)).toFixed(1)}`);
  $("rate-line").setAttribute("points", points.join(" "));
  $("rate-area").setAttribute("points", points.length > 1 ? `${offset.toFixed(1)},${height} ${points.join(" ")} ${width},${height}` : "");
  const label = samples.length === 0
    ? "Delivery rate: no samples yet"
    : `Delivery rate: ${perSecond(samples.at(-1))} mails/s now, peak ${perSecond(Math.max(...samples))} mails/s over the last ${samples.length} s`;
  $("rate-chart").setAttribute("aria-label", label);
  $("rate-chart").dataset.samples = samples.length;
  $("rate-chart-title").textContent = label;
  $("rate-summary").textContent = samples.length === 0 ? "" : `Now ${perSecond(samples.at(-1))}/s, peak ${perSecond(Math.max(...samples))}/s. `;
}

function openCampaign(id) {
  if (events) events.abort();
  failuresShown = -1;
  resetChart();
  $("campaign-view").hidden = false;
  $("view-id").textContent = id;
  for (const field of ["view-subject", "view-from"]) showText($(field), "", "…");
  $("view-message").textContent = "";
  if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
  events = new AbortController();
  follow(id, events.signal);
}

// Server-Sent Events read through fetch() rather than EventSource, which cannot send an Authorization header.
// Like EventSource it reconnects after a drop and sends Last-Event-ID; the server carries on from there.
async function follow(id, signal) {
  let lastEventId = null;
  while (!signal.aborted) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await api(`/campaigns/${id}/events`, { headers, signal });
      if (response.status === 404) { renderUnknown(id); return; }
      if (!response.ok) {
        $("view-message").textContent = `Live updates unavailable (${response.status}).`;
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) type = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
            else if (line.startsWith("id:")) lastEventId = line.slice(3).trim();
          }
          if (data === "") continue;
          const status = JSON.parse(data);
          render(status);
          chartEvent(status, type === "end");
          if (type === "end") { reader.cancel().catch(() => {}); loadRecent(); return; }
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    $("view-message").textContent = "Reconnecting…";
    await new Promise((resolve) => setTimeout(resolve, 2000));
    if (!signal.aborted) $("view-message").textContent = "";
  }
}

async function control(action) {
  if (!current) return;
  const response = await api(`/campaigns/${current.id}/${action}`, { method: "POST" });
  const answer = await response.json().catch(() => ({}));
  if (response.ok) render(answer);
  else $("view-message").textContent = answer.detail ?? `Could not ${action} (${response.status}).`;
}

$("pause").addEventListener("click", () => control("pause"));
$("resume").addEventListener("click", () => control("resume"));
$("cancel").addEventListener("click", () => { if (confirm("Cancel this campaign? What is not sent yet never will be.")) control("cancel"); });

// ---- recent campaigns: from the server, so every tab and every reload sees the same ----

async function loadRecent() {
  const response = await api("/campaigns?limit=20");
  if (!response.ok) return;
  const { campaigns } = await response.json();
  const items = campaigns.map((c) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const when = c.createdAt ? new Date(c.createdAt).toLocaleString() : "";
    const subject = document.createElement("span");
    subject.className = "subject";
    showText(subject, c.subject, "(subject not recorded)");
    const from = document.createElement("span");
    from.className = "from";
    showText(from, c.from, "unrecorded sender");
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${when} · ${c.total} recipients`;
    button.title = c.subject ? `${c.subject}\nfrom ${c.from ?? "an unrecorded sender"}` : `campaign ${c.id}`;
    button.append(subject, from, meta);
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.dataset.status = c.status;
    badge.textContent = c.status.replaceAll("_", " ");
    if (c.status === "held" && c.heldReason) badge.title = `The relay refused the sender: ${c.heldReason}`;
    meta.append(badge);
    button.addEventListener("click", () => openCampaign(c.id));
    li.append(button);
    return li;
  });
  $("recent-list").replaceChildren(...items);
}

loadRecent();
setInterval(loadRecent, 5000);
if (location.hash.length > 1) openCampaign(location.hash.slice(1));
