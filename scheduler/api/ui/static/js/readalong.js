// Read-along: one chapter's text with each word a <span>, and the word being spoken marked
// with aria-current="true" (exactly one at a time). Only the chapter being played is in the
// page: a whole book (Moby-Dick: ~215 000 words) would be far too many elements.

/** A blank line (maybe with spaces) between two paragraphs of the text. */
const PARAGRAPH_BREAK = /\n[ \t]*\n\s*/;

/** Words of a chapter in the page, and which of them is current. */
export class Reading {
  constructor(container) {
    this.container = container;
    this.spans = [];
    this.starts = new Float64Array(0);
    this.current = -1;
    this.userScrolledAt = 0;
    const userScrolled = () => (this.userScrolledAt = performance.now());
    container.addEventListener("wheel", userScrolled, { passive: true });
    container.addEventListener("touchmove", userScrolled, { passive: true });
  }

  /**
   * Put `chapter.text` in the page, one span per entry of `chapter.words`, in one <p> per
   * paragraph: a change of the current word then lays out one paragraph, not the chapter
   * (measured by bench/bench_player.py: one block of 8 000 words took ~50 ms per change).
   * A first paragraph that is the chapter's title (its spoken heading) is styled as one;
   * returns whether there was one.
   */
  show(chapter) {
    const { text, words } = chapter;
    const fragment = document.createDocumentFragment();
    const spans = new Array(words.length);
    const starts = new Float64Array(words.length);
    let paragraph = document.createElement("p");
    fragment.append(paragraph);
    const gap = (between) => {
      const parts = between.split(PARAGRAPH_BREAK);
      if (parts[0]) paragraph.append(parts[0]);
      for (const part of parts.slice(1)) {
        paragraph = document.createElement("p");
        fragment.append(paragraph);
        if (part) paragraph.append(part);
      }
    };
    let position = 0;
    for (let i = 0; i < words.length; i += 1) {
      const [start, , charStart, charEnd] = words[i];
      const from = Math.max(charStart, position);
      const to = Math.max(charEnd, from);
      if (from > position) gap(text.slice(position, from));
      const span = document.createElement("span");
      span.className = "w";
      span.dataset.i = i;
      span.textContent = text.slice(from, to);
      paragraph.append(span);
      spans[i] = span;
      starts[i] = start;
      position = to;
    }
    if (position < text.length) gap(text.slice(position));
    const first = fragment.querySelector("p");
    const squeeze = (value) => value.replace(/\s+/g, " ").trim().toLowerCase();
    const heading = Boolean(first && chapter.title && squeeze(first.textContent) === squeeze(chapter.title));
    if (heading) first.classList.add("heading");
    this.container.replaceChildren(fragment);
    this.container.scrollTop = 0;
    this.spans = spans;
    this.starts = starts;
    this.current = -1;
    return heading;
  }

  /** The index of the word spoken at `time`: the last one starting at or before it (binary search). */
  indexAt(time) {
    const starts = this.starts;
    if (!starts.length) return -1;
    let lo = 0;
    let hi = starts.length - 1;
    if (time < starts[0]) return 0; // before the first word: it is next
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= time) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Mark word `index` as the current one (and only it); keep it in view while reading. */
  mark(index) {
    if (index === this.current) return;
    if (this.current >= 0) this.spans[this.current]?.removeAttribute("aria-current");
    this.current = index;
    const span = this.spans[index];
    if (!span) return;
    span.setAttribute("aria-current", "true");
    if (performance.now() - this.userScrolledAt > 4000) this.reveal(span);
  }

  reveal(span) {
    const box = this.container;
    if (box.scrollHeight > box.clientHeight + 1) {
      const top = span.offsetTop;
      const margin = box.clientHeight * 0.15;
      if (top < box.scrollTop + margin || top > box.scrollTop + box.clientHeight - margin) {
        box.scrollTop = Math.max(0, top - box.clientHeight / 3);
      }
      return;
    }
    const rect = span.getBoundingClientRect();
    if (rect.top < 120 || rect.bottom > innerHeight - 40) span.scrollIntoView({ block: "center" });
  }
}
