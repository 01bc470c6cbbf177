// How numbers read on the page: durations, money, counts, times.

/** 3725.4 → "1:02:05"; 65 → "1:05". */
export function clock(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

/** 42 → "42 s", 600 → "10 min", 7300 → "2 h 2 min". */
export function span(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

const numbers = new Intl.NumberFormat();
export const count = (n) => numbers.format(n);

/** US dollars with enough digits that small costs do not read as $0.00. */
export function money(usd) {
  if (usd == null) return "–";
  const digits = usd !== 0 && Math.abs(usd) < 0.1 ? 4 : 2;
  return `$${usd.toFixed(digits)}`;
}

/** Bytes as kB, MB or GB. */
export function bytes(n) {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** An ISO time as the reader's local date and time, short. */
export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A job's total cost across engines (null while unknown). */
export function totalCost(usage) {
  if (!usage) return null;
  const items = Array.isArray(usage) ? usage : usage.engines || [usage];
  let total = null;
  for (const item of items) {
    if (item && item.cost != null) total = (total || 0) + item.cost;
  }
  return total;
}

/** Make an element: el("li", {class: "x"}, "text", child). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
