// Small helpers the editor modules share: numbers and DOM building.
//
//   import { $, clamp, el, round } from "/static/js/util.js";

export const $ = (id) => document.getElementById(id);

export const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** `v` rounded to `digits` decimals (3 unless told). */
export const round = (v, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * A new element: `el("button", {class, text, onclick, "data-testid": ...}, ...children)`.
 * Attributes false, null or undefined are left out; true sets an empty attribute.
 * `style` goes through the CSSOM: the Content-Security-Policy refuses style attributes.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}
