// Overlay mode's list of highlights: one item a region (select it, its start and end,
// delete it); the selected one also shows its effect, colour and stroke width.

import { EFFECT_NAMES, MAX_STROKE } from "/static/js/overlay/model.js";
import { clamp, el, round } from "/static/js/util.js";

const fmt = (t) => t.toFixed(2);
const regionTitle = (region, index) => `#${index + 1} ${EFFECT_NAMES[region.effect]}`;

function labelled(text, control, unit = null) {
  return el("label", { class: "ov-field" }, el("span", { text }), control, unit ? el("span", { text: unit }) : null);
}

/**
 * @param {object} options
 *   list: the <ol>; emptyNote: shown when there is no highlight; model: overlay/model.js
 *   duration: the working video's, s
 *   select(key, {seekInto}): select a highlight; remove(key): delete one
 *   changed({key, coalesce}): a region was edited: save it, redraw everything, one undo
 *     step (coalesce: merged with the step before of the same name)
 */
export function createRegionList({ list, emptyNote, model, duration, select, remove, changed }) {
  function numberInput(testid, value, label) {
    return el("input", {
      type: "number",
      step: "0.01",
      min: "0",
      max: String(duration),
      value: fmt(value),
      "data-testid": testid,
      "aria-label": label,
    });
  }

  // A start typed at or past the end moves the whole highlight (keyframes included);
  // otherwise the span changes and the keyframes stay inside it (model.setSpan).
  function spanEditor(region, index) {
    const start = numberInput("region-start", region.start, `Start of highlight ${index + 1} (s)`);
    const end = numberInput("region-end", region.end, `End of highlight ${index + 1} (s)`);
    const error = el("p", { class: "ov-region-error form-error", "data-testid": "region-error", role: "alert", hidden: true });
    const onSpan = (moved) => {
      let s = round(Number(start.value), 3);
      let e = round(Number(end.value), 3);
      let shift = 0;
      if (moved === "start" && Number.isFinite(s) && s >= region.end && s < duration) {
        shift = s - region.start;
        e = round(Math.min(duration, region.end + shift), 3);
      }
      let problem = null;
      if (start.value === "" || end.value === "" || !Number.isFinite(s) || !Number.isFinite(e)) {
        problem = "Start and end must be numbers of seconds.";
      } else if (s < 0 || e > duration + 1e-3) {
        problem = `Start and end must be within the video (0–${fmt(duration)} s).`;
      } else if (e <= s) {
        problem = "A highlight must end after it starts.";
      }
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        start.value = fmt(region.start);
        end.value = fmt(region.end);
        return;
      }
      error.hidden = true;
      if (shift) model.shift(region, shift);
      s = Math.max(0, s);
      e = Math.min(e, duration);
      model.setSpan(region, s, e);
      start.value = fmt(region.start);
      end.value = fmt(region.end);
      changed({ key: region.key });
    };
    start.addEventListener("change", () => onSpan("start"));
    end.addEventListener("change", () => onSpan("end"));
    const span = el("div", { class: "ov-region-span" }, labelled("Start", start, "s"), labelled("End", end, "s"));
    return [span, error];
  }

  function regionItem(region, index) {
    const isSelected = region.key === model.selectedKey;
    const pick = el(
      "button",
      {
        type: "button",
        class: "ov-region-select",
        "data-testid": "region-select",
        "aria-pressed": String(isSelected),
        onclick: () => select(region.key, { seekInto: true }),
      },
      el("span", { class: "ov-swatch", "aria-hidden": "true", style: `background:${region.color}` }),
      el("span", { class: "ov-region-title", text: regionTitle(region, index) }),
    );
    const removeButton = el("button", {
      type: "button",
      class: "icon-button small-icon danger ov-region-delete",
      "data-testid": "region-delete",
      "aria-label": `Delete highlight ${index + 1}`,
      title: "Delete this highlight",
      text: "×",
      onclick: () => remove(region.key),
    });
    const item = el(
      "li",
      {
        class: `ov-region${isSelected ? " selected" : ""}`,
        "data-testid": "region-item",
        "data-key": String(region.key),
        "aria-current": isSelected ? "true" : null,
      },
      el("div", { class: "ov-region-row" }, pick, removeButton),
      ...spanEditor(region, index),
    );
    if (isSelected) item.append(regionDetails(region, index, item));
    return item;
  }

  function regionDetails(region, index, item) {
    const effect = el(
      "select",
      { "data-testid": "region-effect" },
      ...Object.entries(EFFECT_NAMES).map(([value, text]) =>
        el("option", { value, text, selected: value === region.effect }),
      ),
    );
    effect.addEventListener("change", () => {
      region.effect = effect.value;
      item.querySelector(".ov-region-title").textContent = regionTitle(region, index);
      changed({ key: region.key });
    });

    const color = el("input", { type: "color", value: region.color, "data-testid": "region-color" });
    color.addEventListener("input", () => {
      region.color = color.value.toLowerCase();
      item.querySelector(".ov-swatch").style.background = region.color;
      changed({ key: region.key, coalesce: `color-${region.key}` }); // one pick, one undo step
    });

    const stroke = el("input", {
      type: "number",
      min: "0",
      max: String(MAX_STROKE),
      step: "1",
      value: String(region.stroke_width),
      "data-testid": "region-stroke",
    });
    stroke.addEventListener("input", () => {
      const value = Number(stroke.value);
      if (stroke.value === "" || !Number.isInteger(value)) return;
      region.stroke_width = clamp(value, 0, MAX_STROKE);
      changed({ key: region.key, coalesce: `stroke-${region.key}` });
    });
    stroke.addEventListener("change", () => {
      stroke.value = String(region.stroke_width);
    });

    return el(
      "div",
      { class: "ov-region-details" },
      labelled("Effect", effect),
      labelled("Colour", color),
      labelled("Stroke px", stroke),
    );
  }

  return {
    render() {
      list.replaceChildren(...model.regions.map(regionItem));
      emptyNote.hidden = model.regions.length > 0;
    },

    /** Whether the keyboard focus is on one of the items' select buttons. */
    hasFocus() {
      const active = document.activeElement;
      return Boolean(active && active.dataset && active.dataset.testid === "region-select");
    },

    /** Put the keyboard focus on a highlight's select button. */
    focus(key) {
      const button = list.querySelector(`[data-key="${key}"] [data-testid="region-select"]`);
      if (button) button.focus();
    },
  };
}
