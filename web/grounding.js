// Grounding answers: cogvlm-grounding-* checkpoints answer with [[x0,y0,x1,y1]] after a
// phrase, the corners in thousandths of the image (three digits, 000–999, origin top left,
// y down), several boxes for one phrase separated by ";" in one pair of double brackets
// (THUDM/CogVLM's README and utils/utils/grounding_parser.py).
//
// The same parser as model/grounding (Go, for the CLI); both pass
// model/grounding/testdata/cases.json. Nothing here touches the DOM: the worker-free
// API (cogvlm.js) and the page (boxes.js) both use it.

/** The two prompts of the grounding generalist (README, "Visual Grounding"). */
export const groundingPrompts = Object.freeze({
  where: (object) => `Where is ${object}? answer in [[x0,y0,x1,y1]] format.`,
  describe: 'Can you provide a description of the image and include the coordinates [[x0,y0,x1,y1]] for each mentioned object?',
});

/**
 * isGroundingModel says whether a loaded model (CogVLM.info) is a grounding variant: its
 * package is named after it (cogvlm-grounding-generalist), or its config.json's
 * _name_or_path says so.
 */
export function isGroundingModel(info) {
  return /grounding/i.test(`${info?.name ?? ''} ${info?.nameOrPath ?? ''}`);
}

// Determiners start a noun phrase: a label starts at the last one of its clause, as the
// nearest noun chunk of upstream's parser does ("a man wearing a hat" → "a hat").
const determiners = new Set(['a', 'an', 'the', 'this', 'that', 'these', 'those', 'my', 'your', 'his', 'her', 'its', 'our', 'their', 'some', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten']);

/** label is the phrase at the end of `before` (see parseBoxes). */
function label(before) {
  const mark = Math.max(...['.', '!', '?', ',', ';', ':', '\n'].map((c) => before.lastIndexOf(c)));
  const words = before.slice(mark + 1).split(/\s+/).filter(Boolean);
  let from = 0;
  words.forEach((w, i) => {
    if (determiners.has(w.toLowerCase())) from = i;
  });
  if (from === 0 && words.length > 1 && /^(and|or)$/i.test(words[0])) from = 1;
  return words.slice(from).join(' ');
}

const isDigit = (c) => c >= '0' && c <= '9';
const skipSpaces = (text, i) => {
  while (text[i] === ' ') i++;
  return i;
};

/** number reads optional spaces, exactly three digits, optional spaces: [value, next] or null. */
function number(text, i) {
  i = skipSpaces(text, i);
  const digits = text.slice(i, i + 3);
  if (digits.length < 3 || ![...digits].every(isDigit) || isDigit(text[i + 3] ?? '')) return null;
  return [Number(digits), skipSpaces(text, i + 3)];
}

/** group reads "box(;box)*]]" at text[i]: [boxes, end] or null. */
function group(text, i) {
  const boxes = [];
  for (;;) {
    const v = [];
    for (let k = 0; k < 4; k++) {
      if (k > 0) {
        if (text[i] !== ',') return null;
        i++;
      }
      const n = number(text, i);
      if (!n) return null;
      [v[k], i] = n;
    }
    const [x0, y0, x1, y1] = v;
    if (x1 < x0 || y1 < y0) return null;
    boxes.push({ x0, y0, x1, y1 });
    if (text.startsWith(']]', i)) return [boxes, i + 2];
    if (text[i] !== ';') return null;
    i++;
  }
}

/**
 * parseBoxes finds the box groups of an answer, left to right: [{start, end, text, label,
 * boxes: [{x0, y0, x1, y1}]}], offsets in UTF-16 code units, coordinates in thousandths.
 * A group is "[[" then boxes separated by ";" then "]]"; a box is four numbers of exactly
 * three digits separated by "," (spaces around a number allowed) with x0 ≤ x1 and
 * y0 ≤ y1. Anything else (two numbers, four digits, reversed corners, an unclosed
 * bracket, a group with one bad box) stays text; it never throws.
 *
 * The groups of a prefix are the first groups of the whole text (a group still open at
 * the end is text until its "]]" arrives), so a streamed answer can be parsed again
 * after every token and what was drawn stays drawn.
 *
 * A group's label is the phrase before it: back to the previous group or the nearest
 * . ! ? , ; : or line break, then from the clause's last determiner ("a", "the", "two",
 * …) if any, else without a leading "and"/"or"; words joined by single spaces.
 */
export function parseBoxes(text) {
  const spans = [];
  if (typeof text !== 'string') return spans;
  let labelFrom = 0;
  for (let i = 0; i + 1 < text.length; ) {
    const found = text.startsWith('[[', i) ? group(text, i + 2) : null;
    if (!found) {
      i++;
      continue;
    }
    const [boxes, end] = found;
    spans.push({ start: i, end, text: text.slice(i, end), label: label(text.slice(labelFrom, i)), boxes });
    labelFrom = i = end;
  }
  return spans;
}

/**
 * toPixels maps the boxes of spans to an image of width × height pixels:
 * [{x0, y0, x1, y1, label}]. The model saw the image resized to a square (490×490,
 * anisotropically), so x scales with the width and y with the height.
 */
export function toPixels(spans, width, height) {
  return spans.flatMap((s) =>
    s.boxes.map((b) => ({ x0: (b.x0 * width) / 1000, y0: (b.y0 * height) / 1000, x1: (b.x1 * width) / 1000, y1: (b.y1 * height) / 1000, label: s.label })),
  );
}

/**
 * answerBoxes is the `boxes` of a generate result: the answer's boxes in the pixels of an
 * image of `size` ({width, height}: the result's `image`, the image as given), [] without
 * an image or without boxes. No image is decoded here: the engine read the size.
 */
export function answerBoxes(text, size) {
  const spans = parseBoxes(text);
  if (spans.length === 0 || !size?.width || !size?.height) return [];
  return toPixels(spans, size.width, size.height);
}
