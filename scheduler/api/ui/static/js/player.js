// The player at /ui/jobs/{id}: a job's documents, their chapters (playable as soon as each is
// ready, while the job still runs), and the text of the chapter being played, word by word.
//
// Routes (the page/API contract): GET /v1/jobs/{id}/documents, and per chapter
// GET …/documents/{name}/chapters/{index} → {final, audio, start, end, text, words}. Word times
// are seconds on the file `audio` points at, so they compare with audio.currentTime directly.

import { ApiError, getJSON } from "./api.js";
import { bytes, clock, count, el, money, span } from "./format.js";
import { Reading } from "./readalong.js";

const ENDED = new Set(["succeeded", "failed", "cancelled"]);
/** Seconds before a chapter's end at which the next one is fetched. */
const PREFETCH_SECONDS = 20;
/** Chapters fetched at once per round of the search for the chapter holding a time. */
const PROBES = 3;
/** Seconds between two looks at the documents while the job runs (chapters become ready). */
const REFRESH_SECONDS = 3;

const jobId = document.body.dataset.job;
const base = `/v1/jobs/${encodeURIComponent(jobId)}`;
const audio = document.getElementById("audio");
const textBox = document.getElementById("text");
const chapterList = document.getElementById("chapters");
const chapterTitle = document.getElementById("chapter-title");
const note = document.getElementById("job-note");
const reading = new Reading(textBox);

const state = {
  job: null,
  documents: [],
  doc: null, // the document shown
  chapter: null, // the chapter resource whose words are in the page
  cache: new Map(), // "doc/index" → Promise of a chapter resource
  switching: false,
  frame: 0,
};

// ——— Loading ———————————————————————————————————————————————————————————————

function chapterOf(doc, index) {
  const key = `${doc.name}/${index}`;
  if (!state.cache.has(key)) {
    const entry = doc.chapters.find((c) => c.index === index);
    const promise = getJSON(entry.url);
    promise.catch(() => state.cache.delete(key)); // not ready yet (409), or a hiccup: ask again
    state.cache.set(key, promise);
  }
  return state.cache.get(key);
}

async function loadDocuments() {
  const answer = await getJSON(`${base}/documents`);
  const before = new Map(state.documents.map((d) => [d.name, d]));
  for (const doc of answer.documents) {
    const old = before.get(doc.name);
    if (old && !old.audio && doc.audio) {
      // Finished: chapters are now on the document's own audio (absolute times).
      for (const key of [...state.cache.keys()]) if (key.startsWith(`${doc.name}/`)) state.cache.delete(key);
    }
  }
  state.documents = answer.documents;
  if (state.doc) state.doc = state.documents.find((d) => d.name === state.doc.name) || state.doc;
  renderTabs();
  renderChapters();
  const shown = state.chapter;
  if (shown && !shown.final && state.doc?.audio) await moveToFinishedAudio(shown);
}

/**
 * The document shown was stitched while one of its chapters played from its preview: go on
 * from the same word in the finished audio (preview times plus the chapter's start are the
 * finished audio's times, by the contract).
 */
async function moveToFinishedAudio(preview) {
  const offset = audio.currentTime;
  const playing = !audio.paused;
  audio.pause();
  const finished = await chapterOf(state.doc, preview.index);
  state.chapter = null; // its words' times changed: show them again
  await openChapter(preview.index, { at: finished.start + offset, play: playing });
}

// ——— Playback and the highlight ——————————————————————————————————————————————

function sameUrl(a, b) {
  return new URL(a, location.href).href === new URL(b, location.href).href;
}

/** Resolve when the audio's metadata is loaded; reject if it cannot be. */
function metadataOf(media) {
  return new Promise((resolve, reject) => {
    media.addEventListener("loadedmetadata", resolve, { once: true });
    media.addEventListener("error", () => reject(new Error("the audio could not be loaded")), { once: true });
  });
}

/** Show chapter `index` of the document shown, its audio at `at` (default: its start). */
async function openChapter(index, { at = null, play = false } = {}) {
  const doc = state.doc;
  const chapter = await chapterOf(doc, index);
  if (state.doc?.name !== doc.name) return; // another document was chosen meanwhile
  if (!audio.src || !sameUrl(audio.src, chapter.audio)) {
    const loaded = metadataOf(audio);
    audio.src = chapter.audio;
    await loaded;
  }
  if (state.chapter !== chapter) {
    state.chapter = chapter;
    const spokenHeading = reading.show(chapter);
    chapterTitle.textContent = chapter.title;
    // The text's own heading shows the title: the label stays for screen readers only.
    chapterTitle.classList.toggle("visually-hidden", spokenHeading);
    markChapter();
  }
  const target = at ?? chapter.start;
  if (Math.abs(audio.currentTime - target) > 0.001) audio.currentTime = target;
  tick();
  if (play) await audio.play().catch(() => {});
}

/**
 * Index of the chapter holding `time` on the finished audio: the last one starting at or before
 * it. The documents list gives no times, so chapters are fetched (and kept) to learn their
 * starts: a search that asks PROBES chapters at once per round (Moby-Dick's 139: 4 rounds, not
 * the 8 one at a time would take).
 */
async function chapterAt(time) {
  const indexes = state.doc.chapters.map((c) => c.index);
  let lo = 0; // the answer is in [lo, hi]
  let hi = indexes.length - 1;
  while (lo < hi) {
    const step = (hi - lo) / (PROBES + 1);
    const probes = [
      ...new Set(Array.from({ length: PROBES }, (_, k) => lo + Math.max(1, Math.round(step * (k + 1))))),
    ];
    const starts = await Promise.all(probes.map((i) => chapterOf(state.doc, indexes[i]).then((c) => c.start)));
    let [low, high] = [lo, hi];
    probes.forEach((i, k) => {
      if (starts[k] <= time) low = Math.max(low, i);
      else high = Math.min(high, i - 1);
    });
    [lo, hi] = [low, high];
  }
  return indexes[lo];
}

/** Move the highlight to audio.currentTime; cross into another chapter when it left this one. */
function tick() {
  const chapter = state.chapter;
  if (!chapter) return;
  const time = audio.currentTime;
  if (chapter.final && (time < chapter.start - 0.01 || time >= chapter.end) && !state.switching) {
    state.switching = true;
    const playing = !audio.paused;
    chapterAt(time)
      .then((index) => (index === chapter.index ? null : openChapter(index, { at: audio.currentTime, play: playing })))
      .catch((error) => (note.textContent = `Could not open the chapter: ${error.message}`))
      .finally(() => (state.switching = false));
  }
  reading.mark(reading.indexAt(time));
  if (chapter.final && chapter.end - time < PREFETCH_SECONDS) prefetchNext(chapter);
}

function prefetchNext(chapter) {
  const next = state.doc.chapters.find((c) => c.index > chapter.index && c.ready);
  if (next) chapterOf(state.doc, next.index).catch(() => {});
}

// requestAnimationFrame while playing: timeupdate fires only about four times a second.
function loop() {
  tick();
  state.frame = audio.paused ? 0 : requestAnimationFrame(loop);
}
audio.addEventListener("play", () => {
  if (!state.frame) state.frame = requestAnimationFrame(loop);
});
audio.addEventListener("pause", () => {
  cancelAnimationFrame(state.frame);
  state.frame = 0;
  tick();
});
// While paused, a seek (the audio's own controls, a click on a word) moves the highlight too:
// at once on `seeking` (currentTime is already the new position), and again on `seeked`.
// https://html.spec.whatwg.org/multipage/media.html#seeking
audio.addEventListener("seeking", tick);
audio.addEventListener("seeked", tick);
audio.addEventListener("timeupdate", () => {
  if (audio.paused) tick();
});
audio.addEventListener("ended", () => {
  // A chapter's preview (the job still runs) ends with the chapter: go on to the next ready one.
  const chapter = state.chapter;
  if (!chapter || chapter.final) return;
  const next = state.doc.chapters.find((c) => c.index > chapter.index && c.ready);
  if (next) openChapter(next.index, { play: true }).catch(showError);
});

function seekToWord(index) {
  const words = state.chapter?.words;
  if (!words || index < 0 || index >= words.length) return;
  audio.currentTime = words[index][0];
  reading.mark(index);
}

textBox.addEventListener("click", (event) => {
  const word = event.target.closest(".w");
  if (word) seekToWord(Number(word.dataset.i));
});
textBox.addEventListener("keydown", (event) => {
  if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
    seekToWord(Math.max(0, reading.current) + (event.key === "ArrowRight" ? 1 : -1));
  } else if (event.key === " " || event.key === "Enter") {
    if (audio.paused) audio.play().catch(() => {});
    else audio.pause();
  } else {
    return;
  }
  event.preventDefault();
});

// ——— Rendering ————————————————————————————————————————————————————————————————

function renderTabs() {
  const tabs = document.getElementById("documents");
  tabs.hidden = state.documents.length < 2;
  tabs.replaceChildren(
    ...state.documents.map((doc) =>
      el(
        "button",
        // By name: unique in a job, while a title given for the job is every document's.
        {
          type: "button",
          "aria-pressed": String(doc.name === state.doc?.name),
          "data-doc": doc.name,
          title: doc.title || doc.name,
        },
        doc.name,
      ),
    ),
  );
}

document.getElementById("documents").addEventListener("click", (event) => {
  const tab = event.target.closest("[data-doc]");
  if (tab) selectDocument(tab.dataset.doc);
});

function markChapter() {
  for (const button of chapterList.querySelectorAll("button")) {
    const current = state.chapter && Number(button.dataset.index) === state.chapter.index;
    if (current) button.setAttribute("aria-current", "location");
    else button.removeAttribute("aria-current");
  }
}

function renderChapters() {
  const doc = state.doc;
  if (!doc) return;
  chapterList.replaceChildren(
    ...doc.chapters.map((chapter) =>
      el(
        "li",
        {},
        el(
          "button",
          { type: "button", "data-index": chapter.index, disabled: !chapter.ready },
          el("span", { class: "chapter-name" }, chapter.title),
          el("span", { class: "chapter-state" }, chapter.ready ? "" : "rendering…"),
        ),
      ),
    ),
  );
  markChapter();
}

chapterList.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-index]");
  if (button) openChapter(Number(button.dataset.index), { play: !audio.paused }).catch(showError);
});

async function selectDocument(name) {
  state.doc = state.documents.find((d) => d.name === name) || state.documents[0];
  state.chapter = null;
  renderTabs();
  renderChapters();
  const first = state.doc?.chapters.find((c) => c.ready);
  if (first) await openChapter(first.index).catch(showError);
  else {
    textBox.replaceChildren();
    chapterTitle.textContent = "";
    note.textContent = "No chapter is ready yet: they appear here as they are made.";
  }
  renderReports();
}

function renderJob() {
  const job = state.job;
  const status = document.getElementById("job-status");
  status.textContent = job.status;
  status.className = `status status-${job.status}`;
  if (job.error) note.textContent = job.error;
  else if (job.status === "stitching") {
    note.textContent = "Every chunk is spoken: the finished audio is being made. Chapters play now.";
  } else if (!ENDED.has(job.status)) {
    const p = job.progress;
    note.textContent = p.chunks_total
      ? `Rendering: ${count(p.chunks_done)} of ${count(p.chunks_total)} chunks` +
        (p.eta_seconds != null ? `, about ${span(p.eta_seconds)} left.` : ".") +
        " Ready chapters can be played now."
      : "Waiting to be planned…";
  } else note.textContent = "";
  renderReports();
}

function facts(list, pairs) {
  const shown = pairs.filter(([, value]) => value != null && value !== "");
  list.replaceChildren(...shown.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

function renderReports() {
  const job = state.job;
  if (!job) return;
  const usage = job.usage;
  if (usage) {
    facts(document.getElementById("cost"), [
      ["Engine", [usage.engine, usage.model].filter(Boolean).join(" · ")],
      ["Sent", `${count(usage.chars_sent)} characters, ${count(usage.chunks_sent)} chunks`],
      ["Retried", usage.chars_retried ? `${count(usage.chars_retried)} characters` : null],
      ["From cache", `${count(usage.chars_cached)} characters`],
      ["Price", usage.price_per_million != null ? `${money(usage.price_per_million)} per million` : null],
      ["Cost", usage.cost != null ? money(usage.cost) : "no price known"],
    ]);
  }
  const report = state.doc && job.audio ? job.audio[state.doc.name] : null;
  if (report) {
    const loud = report.loudness;
    facts(document.getElementById("loudness"), [
      ["Audio", `${report.format.toUpperCase()} · ${report.codec} · ${report.sample_rate} Hz` +
        (report.bitrate_kbps ? ` · ${report.bitrate_kbps} kb/s` : "")],
      ["Length", clock(report.duration)],
      ["Loudness", loud ? `${loud.input_lufs.toFixed(1)} → ${loud.output_lufs.toFixed(1)} LUFS (target ${loud.target_lufs})` : "not mastered"],
      ["Gain", loud ? `${loud.gain_db >= 0 ? "+" : ""}${loud.gain_db.toFixed(1)} dB` : null],
      ["True peak", loud ? `${loud.true_peak_dbtp.toFixed(1)} dBTP (ceiling ${loud.ceiling_dbtp})` : null],
      ["Range", loud ? `${loud.output_lra.toFixed(1)} LU` : null],
      ["RMS", loud ? `${loud.rms_dbfs.toFixed(1)} dB` : null],
      ["Noise floor", loud ? `${loud.noise_floor_dbfs.toFixed(0)} dB` : null],
      ["ACX", loud ? (loud.acx ? "meets ACX's levels" : "misses ACX's levels") : null],
    ]);
  } else if (job.status === "succeeded") {
    facts(document.getElementById("loudness"), [
      ["Report", "none: the audio is as synthesised, not mastered"],
    ]);
  }
}

async function renderDownloads() {
  const list = document.getElementById("downloads");
  try {
    const result = await getJSON(`${base}/result`);
    list.replaceChildren(
      ...result.files.map((file) =>
        el(
          "li",
          {},
          el("a", { href: file.url, download: file.name }, el("span", {}, file.name), el("span", { class: "size" }, bytes(file.size))),
        ),
      ),
    );
  } catch (error) {
    list.replaceChildren(el("li", { class: "muted" }, error.status === 409 ? "When the job has succeeded." : error.message));
  }
}

function showError(error) {
  if (error instanceof ApiError && error.status === 409) note.textContent = "That chapter is not ready yet.";
  else note.textContent = error.message;
}

/** Nothing shown yet (no document was planned, or no chapter was ready): try again. */
async function showSomething() {
  const name = state.doc?.name ?? state.documents[0]?.name;
  if (!state.chapter && name) await selectDocument(name);
}

// ——— While the job runs ————————————————————————————————————————————————————————

function followJob() {
  const source = new EventSource(`${base}/events`);
  let refreshing = null;
  const refreshDocuments = () => {
    if (refreshing) return;
    refreshing = setTimeout(async () => {
      refreshing = null;
      await loadDocuments().catch(() => {});
      await showSomething();
    }, REFRESH_SECONDS * 1000);
  };
  source.addEventListener("progress", (event) => {
    state.job = JSON.parse(event.data);
    renderJob();
    refreshDocuments();
  });
  source.addEventListener("end", async (event) => {
    source.close();
    state.job = JSON.parse(event.data);
    renderJob();
    await loadDocuments().catch(showError);
    await showSomething();
    renderDownloads();
  });
  source.addEventListener("error", () => source.close());
}

async function start() {
  try {
    state.job = await getJSON(base);
    renderJob();
    await loadDocuments();
    await selectDocument(state.documents[0]?.name);
    if (ENDED.has(state.job.status)) renderDownloads();
    else followJob();
  } catch (error) {
    showError(error);
  }
}

start();
