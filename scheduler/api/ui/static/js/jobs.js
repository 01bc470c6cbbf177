// The jobs page: the tenant's jobs and runs with live progress, cancel and retry, and the
// form that submits a job (submit.js).

import { ApiError, getJSON, request } from "./api.js";
import { count, el, money, span, totalCost, when } from "./format.js";
import { setUpSubmitForm } from "./submit.js";

const ENDED = new Set(["succeeded", "failed", "cancelled"]);
/** Browsers keep about six connections per host over HTTP/1.1: leave most for fetches. */
const MAX_STREAMS = 3;
/** Seconds between two looks at the list while some active job is not streamed. */
const POLL_SECONDS = 4;

const list = document.getElementById("jobs");
const empty = document.getElementById("jobs-empty");
const note = document.getElementById("jobs-note");
const streams = new Map(); // job id → EventSource
let pollTimer = null;

function progressText(job) {
  const p = job.progress;
  const parts = [];
  if (p.chunks_total) parts.push(`${count(p.chunks_done)} / ${count(p.chunks_total)} chunks`);
  if (p.audio_seconds) parts.push(`${span(p.audio_seconds)} of audio`);
  if (!ENDED.has(job.status) && p.eta_seconds != null) parts.push(`ETA ${span(p.eta_seconds)}`);
  const cost = totalCost(job.usage);
  if (cost != null) parts.push(`cost ${money(cost)}`);
  if (job.usage && job.usage.chars_cached) parts.push(`${count(job.usage.chars_cached)} chars from cache`);
  const engine = job.options && job.options.engine;
  if (engine) parts.push([engine.engine, engine.voice].filter(Boolean).join(" · "));
  if (job.options && job.options.audio_format) parts.push(job.options.audio_format.toUpperCase());
  if (job.created_at) parts.push(when(job.created_at));
  return parts;
}

function fillJob(item, job) {
  const focused = item.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  item.replaceChildren();
  item.dataset.status = job.status;
  const head = el(
    "div",
    { class: "job-head" },
    el("a", { class: "job-name", href: `/ui/jobs/${encodeURIComponent(job.id)}` }, job.name || job.id),
    el("span", { class: `status status-${job.status}`, "data-role": "status" }, job.status),
    el("span", { class: "job-id" }, job.id.slice(0, 8)),
  );
  const actions = el("div", { class: "job-actions" });
  if (!ENDED.has(job.status)) {
    actions.append(el("button", { type: "button", "data-action": "cancel", class: "danger" }, "Cancel"));
  }
  if (job.status === "failed" || job.status === "cancelled") {
    actions.append(el("button", { type: "button", "data-action": "retry" }, "Retry"));
  }
  actions.append(el("a", { class: "button", href: `/ui/jobs/${encodeURIComponent(job.id)}` }, "Listen"));
  const meta = el("div", { class: "job-meta" }, ...progressText(job).map((part) => el("span", {}, part)));
  item.append(head, actions, meta);
  const p = job.progress;
  if (!ENDED.has(job.status) || p.chunks_failed) {
    const bar = el("progress", {
      class: "job-bar",
      max: Math.max(p.chunks_total, 1),
      "aria-label": `progress of ${job.name}`,
    });
    if (p.chunks_total) bar.value = p.chunks_done;
    else bar.removeAttribute("value"); // indeterminate while the job is planned
    item.append(bar);
  }
  if (job.error) item.append(el("p", { class: "job-error" }, job.error));
  if (job.warning) item.append(el("p", { class: "job-error" }, job.warning));
  if (job.errors && job.errors.length) {
    const failed = job.errors.filter((e) => e.final).length;
    const summary = `${job.errors.length} chunk error${job.errors.length > 1 ? "s" : ""}` +
      (failed ? ` (${failed} failed for good)` : " (retrying)");
    item.append(
      el(
        "details",
        { class: "job-errors" },
        el("summary", {}, summary),
        el("ul", {}, ...job.errors.map((e) => el("li", {}, `${e.chunk}: ${e.error}`))),
      ),
    );
  }
  if (focused) item.querySelector(`[data-action="${focused}"]`)?.focus();
}

function itemOf(jobId) {
  return list.querySelector(`li[data-id="${CSS.escape(jobId)}"]`);
}

function showJob(job, { first = false } = {}) {
  let item = itemOf(job.id);
  if (!item) {
    item = el("li", { class: "job", "data-id": job.id });
    if (first) list.prepend(item);
    else list.append(item);
  }
  fillJob(item, job);
  empty.hidden = list.children.length > 0;
  if (!ENDED.has(job.status)) follow(job.id);
}

function follow(jobId) {
  if (streams.has(jobId) || streams.size >= MAX_STREAMS) return;
  // Server-sent events (the API's /events): EventSource sends the session cookie same-origin.
  // https://html.spec.whatwg.org/multipage/server-sent-events.html
  const source = new EventSource(`/v1/jobs/${encodeURIComponent(jobId)}/events`);
  streams.set(jobId, source);
  const update = (event) => showJob(JSON.parse(event.data));
  source.addEventListener("progress", update);
  source.addEventListener("end", (event) => {
    close(jobId);
    update(event);
    refresh(); // another active job may take the free stream
  });
  source.addEventListener("error", () => {
    // The stream dropped (the API restarted, or the job was purged): the poll takes over.
    close(jobId);
    schedulePoll();
  });
}

function close(jobId) {
  streams.get(jobId)?.close();
  streams.delete(jobId);
}

function schedulePoll() {
  if (pollTimer == null) pollTimer = setTimeout(refresh, POLL_SECONDS * 1000);
}

async function refresh() {
  pollTimer = null;
  try {
    const page = await getJSON("/v1/jobs?limit=50");
    const seen = new Set();
    for (const job of page.items) {
      seen.add(job.id);
      showJob(job);
    }
    for (const item of [...list.children]) if (!seen.has(item.dataset.id)) item.remove();
    // Keep the order the API gives (newest first).
    for (const job of page.items) list.append(itemOf(job.id));
    empty.hidden = page.items.length > 0;
    note.textContent = page.next_offset != null ? "the 50 newest" : "";
    if (page.items.some((job) => !ENDED.has(job.status) && !streams.has(job.id))) schedulePoll();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      note.textContent = `Could not load the jobs: ${error.message}`;
      schedulePoll();
    }
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

async function refreshRuns() {
  try {
    const page = await getJSON("/v1/runs?limit=20");
    const runs = document.getElementById("runs");
    runs.replaceChildren(
      ...page.items.map((run) => {
        const p = run.progress;
        const states = Object.entries(p.jobs_by_status).map(([s, n]) => `${n} ${s}`).join(", ");
        return el(
          "li",
          { class: "job" },
          el(
            "div",
            { class: "job-head" },
            el("span", { class: "job-name" }, run.name || run.id),
            el("span", { class: `status status-${run.status}` }, run.status),
            el("span", { class: "job-id" }, run.id),
          ),
          el(
            "div",
            { class: "job-meta" },
            el("span", {}, `${count(p.jobs_total)} jobs: ${states || "none"}`),
            el("span", {}, `${count(p.chunks_done)} / ${count(p.chunks_total)} chunks`),
            p.audio_seconds ? el("span", {}, `${span(p.audio_seconds)} of audio`) : null,
            run.skipped.length ? el("span", {}, `${run.skipped.length} unchanged, skipped`) : null,
            el("span", {}, when(run.created_at)),
          ),
          el("progress", { class: "job-bar", max: Math.max(p.chunks_total, 1), value: p.chunks_done }),
        );
      }),
    );
    document.getElementById("runs-section").hidden = page.items.length === 0;
    if (page.items.some((run) => !ENDED.has(run.status))) setTimeout(refreshRuns, POLL_SECONDS * 1000);
  } catch {
    // Runs are secondary: the jobs list says when the API cannot be reached.
  }
}

list.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const jobId = button.closest("li").dataset.id;
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  button.disabled = true;
  try {
    if (button.dataset.action === "cancel") {
      await request(path, { method: "DELETE" });
      close(jobId);
      showJob(await getJSON(path));
    } else {
      showJob(await request(`${path}/retry`, { method: "POST" }));
    }
  } catch (error) {
    button.disabled = false;
    note.textContent = `${button.textContent} failed: ${error.message}`;
  }
});

setUpSubmitForm((job) => showJob(job, { first: true }));
refresh();
refreshRuns();
