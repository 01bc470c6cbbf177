// The "New job" form: text or files, the main options, a dry run that shows the estimate.
// It posts multipart/form-data to POST /v1/jobs, the same body `curl -F` sends.

import { request } from "./api.js";
import { count, money, span } from "./format.js";

/** Fields sent as they are when not empty. */
const PLAIN = ["name", "engine", "model", "voice", "audio_format", "loudness", "max_cost"];

function body(form, { dryRun }) {
  const data = new FormData();
  const text = form.elements.input.value;
  const files = [...form.elements.files.files];
  if (text.trim() && files.length) throw new Error("Give text or files, not both.");
  if (!text.trim() && !files.length) throw new Error("Paste some text or choose files first.");
  if (text.trim()) data.append("input", text);
  for (const file of files) data.append("files", file, file.name);
  for (const name of PLAIN) {
    const value = form.elements[name].value.trim();
    if (value) data.append(name, value);
  }
  if (form.elements.split_chapters.checked) data.append("split_chapters", "true");
  const info = {};
  for (const name of ["title", "author"]) {
    const value = form.elements[name].value.trim();
    if (value) info[name] = value;
  }
  if (Object.keys(info).length) data.append("info", JSON.stringify(info));
  const cover = form.elements.cover.files[0];
  if (cover) data.append("cover", cover, cover.name);
  if (dryRun) data.append("dry_run", "true");
  return data;
}

function describe(estimate) {
  const parts = [
    `${count(estimate.chars)} characters in ${count(estimate.chunks)} chunks`,
    estimate.cached_chunks ? `${count(estimate.cached_chunks)} already cached` : null,
    `${count(estimate.billed_chars)} billed`,
    `about ${span(estimate.audio_seconds)} of audio`,
    `ready in about ${span(estimate.wall_seconds)}`,
    estimate.cost != null ? `cost ${money(estimate.cost)}` : "no price known for this engine",
  ];
  return `Estimate: ${parts.filter(Boolean).join(" · ")}.`;
}

/** Wire the form; `accepted(job)` is called with each job the API accepts. */
export function setUpSubmitForm(accepted) {
  const form = document.getElementById("submit-form");
  const result = document.getElementById("f-result");
  const buttons = [document.getElementById("f-submit"), document.getElementById("f-estimate")];

  async function send(dryRun) {
    result.classList.remove("bad");
    let data;
    try {
      data = body(form, { dryRun });
    } catch (error) {
      result.classList.add("bad");
      result.textContent = error.message;
      return;
    }
    buttons.forEach((b) => (b.disabled = true));
    result.textContent = dryRun ? "Estimating…" : "Submitting…";
    try {
      const answer = await request("/v1/jobs", { method: "POST", body: data });
      if (dryRun) {
        result.textContent = describe(answer);
      } else {
        result.textContent = `Accepted: ${answer.name} (${answer.id.slice(0, 8)}).`;
        form.elements.input.value = "";
        form.elements.files.value = "";
        accepted(answer);
      }
    } catch (error) {
      result.classList.add("bad");
      result.textContent = error.message;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(false);
  });
  document.getElementById("f-estimate").addEventListener("click", () => send(true));
}
