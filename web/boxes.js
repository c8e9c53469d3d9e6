// The page's drawing of grounding boxes: an answer's [[x0,y0,x1,y1]] groups become chips
// in its text (AnswerView) and boxes over the image preview (BoxOverlay), as the answer
// streams. A box is positioned in percent of the preview's frame — thousandths / 10 — so it
// scales with the preview at every width, x with the width and y with the height (the
// model saw the image squashed to 490×490). Hovering or focusing a chip highlights its
// boxes, hovering a box highlights its chip; the chips carry the boxes' descriptions for
// screen readers (the drawing itself is aria-hidden).

import { parseBoxes } from './grounding.js';

/** Colours of boxes 1, 2, 3, …: distinct hues that stand out on photos, dark text on none. */
const palette = ['#e03131', '#1c7ed6', '#2f9e44', '#f08c00', '#ae3ec9', '#0c8599', '#d6336c', '#5c940d'];
const colorOf = (index) => palette[index % palette.length];

const pct = (thousandths) => `${thousandths / 10}%`;

/** BoxOverlay draws the boxes of one answer (the latest, or the one whose chip is hovered). */
export class BoxOverlay {
  #layer;
  #toggle;
  #checkbox;
  #count;
  #preview;
  #view = null; // the AnswerView drawn
  #elements = []; // box index → its element

  constructor({ layer, toggle, checkbox, count, preview }) {
    this.#layer = layer;
    this.#toggle = toggle;
    this.#checkbox = checkbox;
    this.#count = count;
    this.#preview = preview;
    checkbox.addEventListener('change', () => {
      layer.hidden = !checkbox.checked;
    });
  }

  /** imageSize is the preview's natural size in pixels, or null without an image. */
  imageSize() {
    const img = this.#preview;
    return img.getAttribute('src') && img.naturalWidth > 0 ? { width: img.naturalWidth, height: img.naturalHeight } : null;
  }

  /** show draws view's boxes (again, if it is drawn: boxes may have arrived). */
  show(view) {
    this.#view = view;
    const boxes = view?.boxes ?? [];
    // Boxes only ever arrive (an answer grows): keep the elements drawn, add the new ones.
    if (this.#elements.length > boxes.length || this.#elements.some((el, i) => el.dataset.key !== boxes[i].key)) {
      this.#layer.replaceChildren();
      this.#elements = [];
    }
    for (const box of boxes.slice(this.#elements.length)) {
      const el = boxElement(box);
      el.addEventListener('pointerenter', () => this.#view?.highlightSpan(box.span));
      el.addEventListener('pointerleave', () => this.#view?.highlightSpan(null));
      this.#layer.append(el);
      this.#elements.push(el);
    }
    this.#toggle.hidden = boxes.length === 0;
    this.#count.textContent = boxes.length === 1 ? '(1 box)' : `(${boxes.length} boxes)`;
    this.#layer.hidden = !this.#checkbox.checked;
  }

  /** highlight marks the boxes of view's span (null: none); draws view first if needed. */
  highlight(view, span) {
    if (view !== this.#view) this.show(view);
    this.#layer.dataset.highlight = span === null ? '' : 'true';
    this.#elements.forEach((el, i) => {
      el.toggleAttribute('data-active', span !== null && this.#view.boxes[i].span === span);
    });
  }

  clear() {
    this.show(null);
  }
}

function boxElement(box) {
  const el = document.createElement('div');
  el.className = 'box';
  el.dataset.key = box.key;
  el.style.left = pct(box.x0);
  el.style.top = pct(box.y0);
  el.style.width = pct(box.x1 - box.x0);
  el.style.height = pct(box.y1 - box.y0);
  el.style.setProperty('--box-color', colorOf(box.index));
  const tag = document.createElement('span');
  tag.className = 'box-label';
  // Above the box when there is room, inside it at the top edge; from its right edge
  // when it lies in the image's right part, so that the label stays on the image.
  tag.dataset.place = `${box.y0 >= 100 ? 'above' : 'inside'} ${box.x0 > 600 ? 'right' : 'left'}`;
  tag.textContent = box.label ? `${box.index + 1} ${box.label}` : `${box.index + 1}`;
  el.append(tag);
  return el;
}

/**
 * AnswerView shows one answer's text with its box groups as chips. update(text) takes the
 * whole answer so far; closed groups never change as text arrives (see parseBoxes), so
 * their chips stay — and keep the keyboard focus — while the tail grows.
 */
export class AnswerView {
  #el;
  #overlay;
  #text = '';
  #spans = 0; // groups rendered as chips
  #upto = 0; // text[0:#upto] is rendered up to the last chip
  #tail = null; // the text node after it
  #first = null; // the first node rendered: another first child means the element was rewritten
  #chips = []; // span index → its chip
  /** boxes: every box of the answer, [{x0, y0, x1, y1 (thousandths), label, index, span, key}]. */
  boxes = [];

  constructor(el, overlay) {
    this.#el = el;
    this.#overlay = overlay;
  }

  update(text) {
    if (!text.startsWith(this.#text) || this.#el.firstChild !== this.#first) this.#reset();
    this.#text = text;
    const spans = parseBoxes(text);
    for (const span of spans.slice(this.#spans)) {
      this.#setTail(text.slice(this.#upto, span.start));
      this.#tail = null;
      this.#el.append(this.#chip(span, this.#spans));
      this.#upto = span.end;
      this.#spans++;
    }
    this.#setTail(text.slice(this.#upto));
    if (spans.length > 0) this.#overlay.show(this);
  }

  /** highlightSpan marks the chip and boxes of span (an index; null: none). */
  highlightSpan(span) {
    this.#chips.forEach((chip, i) => chip.toggleAttribute('data-active', i === span));
    this.#overlay.highlight(this, span);
  }

  #reset() {
    this.#el.replaceChildren();
    this.#spans = this.#upto = 0;
    this.#tail = this.#first = null;
    this.#chips = [];
    this.boxes = [];
  }

  #setTail(s) {
    if (!this.#tail) {
      this.#tail = this.#el.appendChild(document.createTextNode(''));
      this.#first ??= this.#tail;
    }
    if (this.#tail.nodeValue !== s) this.#tail.nodeValue = s;
  }

  #chip(span, spanIndex) {
    const chip = document.createElement('button');
    chip.type = 'button';
    chip.className = 'box-chip';
    chip.title = span.text;
    const size = this.#overlay.imageSize();
    const words = [];
    for (const b of span.boxes) {
      const index = this.boxes.length;
      this.boxes.push({ ...b, label: span.label, index, span: spanIndex, key: `${spanIndex}:${index}:${span.text}:${span.label}` });
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.setProperty('--box-color', colorOf(index));
      chip.append(swatch, `${index + 1}`);
      words.push(`box ${index + 1}${span.label ? `, ${span.label},` : ''} ${describe(b, size)}`);
    }
    chip.setAttribute('aria-label', `${words.join('; ')}. Shows it on the image.`);
    const on = () => this.highlightSpan(spanIndex);
    const off = () => this.highlightSpan(null);
    chip.addEventListener('pointerenter', on);
    chip.addEventListener('pointerleave', off);
    chip.addEventListener('focus', on);
    chip.addEventListener('blur', off);
    chip.addEventListener('click', () => chip.focus()); // Safari does not focus a clicked button
    this.#chips.push(chip);
    return chip;
  }
}

/** describe says where a box is, in pixels of the image when there is one. */
function describe(b, size) {
  if (!size) return `from ${b.x0 / 10}% to ${b.x1 / 10}% across and ${b.y0 / 10}% to ${b.y1 / 10}% down`;
  const px = (v, n) => Math.round((v * n) / 1000);
  return `x ${px(b.x0, size.width)} to ${px(b.x1, size.width)}, y ${px(b.y0, size.height)} to ${px(b.y1, size.height)} of ${size.width} × ${size.height} pixels`;
}
