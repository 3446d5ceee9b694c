// Undo and redo, the same in both editors: a history of snapshots of what the editor
// edits (framing: each clip's crop keyframes, trim and segments, by clip id; overlay:
// the list of highlights). A snapshot is taken when an edit is done (a drag's release,
// not each pointer move), so one gesture is one step; the last UNDO_LIMIT steps are
// kept. Undo and redo bring a snapshot back through the editor's `restore`, which shows
// it and marks it edited: autosave saves it like any other edit. A new edit clears what
// could be redone.
//
//   const history = createHistory({ capture: () => state, restore: (state, meta) => {...},
//                                   undoButton: $("undo"), redoButton: $("redo") });
//   history.reset();                       // the state as loaded: nothing to undo
//   history.record({ clipId: 3 });         // after every edit (meta goes to restore)
//   history.record(meta, { coalesce: "color-2" });  // merged with a step of the same key
//
// Keys (on the whole page): Ctrl+Z (Cmd+Z) undo; Ctrl+Shift+Z and Ctrl+Y redo. Not in a
// text field (the browser's own text undo works there), not while a dialog is open.

export const UNDO_LIMIT = 100;
const COALESCE_MS = 1500; // a step with the same coalesce key this soon is merged

const TEXT_INPUTS = new Set(["text", "number", "search", "email", "password", "url", "tel"]);

function typingInto(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA") return true;
  return target.tagName === "INPUT" && TEXT_INPUTS.has(target.type);
}

/**
 * @param {object} options
 *   capture(): the editable state now (plain data; it is copied as JSON)
 *   restore(state, meta): show `state` (a fresh copy) and save it; meta: the step's own
 *     (what `record` was given). Returning false says nothing visible changed (the step
 *     was about something gone, e.g. a deleted clip): the next step is taken too.
 *   undoButton, redoButton: enabled only when there is something to undo / redo
 *   onChange(history): after every change of the stacks
 *   limit: steps kept (UNDO_LIMIT)
 */
export function createHistory({ capture, restore, undoButton = null, redoButton = null, onChange = () => {}, limit = UNDO_LIMIT }) {
  let present = null; // JSON of the state now, as last recorded
  let undoStack = []; // [{state: JSON before the step, meta}]
  let redoStack = []; // [{state: JSON after the step, meta}]
  let lastMerge = null; // {key, at} of the last step, for coalescing

  const snap = () => JSON.stringify(capture());

  function changed() {
    if (undoButton) undoButton.disabled = undoStack.length === 0;
    if (redoButton) redoButton.disabled = redoStack.length === 0;
    onChange(history);
  }

  // Take steps from one stack to the other until one shows a change.
  function move(from, to) {
    while (from.length) {
      const entry = from.pop();
      to.push({ state: present, meta: entry.meta });
      present = entry.state;
      lastMerge = null;
      if (restore(JSON.parse(entry.state), entry.meta) !== false) break;
    }
    changed();
  }

  const history = {
    canUndo: () => undoStack.length > 0,
    canRedo: () => redoStack.length > 0,
    /** The number of steps that can be undone / redone. */
    sizes: () => ({ undo: undoStack.length, redo: redoStack.length }),

    /** Forget every step: the state now is where undo stops. */
    reset() {
      present = snap();
      undoStack = [];
      redoStack = [];
      lastMerge = null;
      changed();
    },

    /** The state changed outside undo's scope (a clip uploaded): take it as it is now. */
    sync() {
      if (present !== null) present = snap();
    },

    /** After an edit: one step back to the state before it (nothing if nothing changed). */
    record(meta = {}, { coalesce = null } = {}) {
      if (present === null) {
        history.reset();
        return false;
      }
      const next = snap();
      if (next === present) return false;
      const at = Date.now();
      if (coalesce && lastMerge && lastMerge.key === coalesce && at - lastMerge.at < COALESCE_MS && undoStack.length) {
        present = next; // the same gesture: the step already goes back to before it
        lastMerge.at = at;
        redoStack = [];
        changed();
        return true;
      }
      undoStack.push({ state: present, meta });
      if (undoStack.length > limit) undoStack.splice(0, undoStack.length - limit);
      redoStack = [];
      present = next;
      lastMerge = coalesce ? { key: coalesce, at } : null;
      changed();
      return true;
    },

    undo() {
      if (undoStack.length) move(undoStack, redoStack);
    },

    redo() {
      if (redoStack.length) move(redoStack, undoStack);
    },
  };

  if (undoButton) undoButton.addEventListener("click", () => history.undo());
  if (redoButton) redoButton.addEventListener("click", () => history.redo());

  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey || event.defaultPrevented) return;
    if (typingInto(event.target) || document.querySelector("dialog[open]")) return;
    const key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) {
      event.preventDefault();
      history.undo();
    } else if ((key === "z" && event.shiftKey) || (key === "y" && !event.shiftKey)) {
      event.preventDefault();
      history.redo();
    }
  });

  changed();
  return history;
}
