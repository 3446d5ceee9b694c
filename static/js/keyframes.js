// The keyframe chips under the transport bar, in both editors: a chip a keyframe, its
// time (a click goes there) and a delete button; the chip the playhead is on is marked.

import { el } from "/static/js/util.js";

/**
 * Fill `list` (the <ol>) with a chip for each of `keyframes` ([{time, ...}]).
 * @param {object} options
 *   selectedTime: the marked keyframe's time (null: none)
 *   canDelete: whether the chips get a delete button
 *   onGo(keyframe), onDelete(keyframe): the chip's two buttons
 */
export function renderKeyframeChips(list, keyframes, { selectedTime = null, canDelete = true, onGo, onDelete }) {
  list.replaceChildren(
    ...keyframes.map((k) => {
      const label = `${k.time.toFixed(2)} s`;
      const selected = k.time === selectedTime;
      return el(
        "li",
        { class: `kf-chip${selected ? " selected" : ""}`, "data-testid": "keyframe-item", "data-time": String(k.time) },
        el("button", {
          type: "button",
          class: "kf-select",
          "aria-pressed": String(selected),
          "aria-label": `Keyframe at ${label}: go there`,
          title: "Go to this keyframe",
          text: label,
          onclick: () => onGo(k),
        }),
        canDelete
          ? el("button", {
              type: "button",
              class: "kf-delete",
              "data-testid": "keyframe-delete",
              "aria-label": `Delete the keyframe at ${label}`,
              title: "Delete keyframe",
              text: "×",
              onclick: () => onDelete(k),
            })
          : null,
      );
    }),
  );
}

/** Mark the chip of the keyframe at `time` (null: none) as the one the playhead is on. */
export function markKeyframeChip(list, time) {
  for (const chip of list.children) {
    const on = time !== null && Number(chip.dataset.time) === time;
    chip.classList.toggle("selected", on);
    const button = chip.querySelector(".kf-select");
    if (button) button.setAttribute("aria-pressed", String(on));
  }
}
