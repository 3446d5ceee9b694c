// Autosave, the same in both editors: edits are saved a moment after the last one
// (debounced), one save at a time, until the server has the latest; the page's save
// status (#save-status) says where things stand. "Saved" only when the server also
// backed it up: the sync status every API response reports (api.js) is heard here, and
// the header's badge explains the rest.
//
//   const autosave = createAutosave({ status: $("save-status"), save: () => api.put(...) });
//   autosave.edited();                        // after every edit
//   if (!(await autosave.flush())) alert(autosave.error);  // save now
//
// `save()` saves everything edited so far (it rejects with an ApiError, or throws); a
// failed save shows the error and a Retry button, and the edits stay pending. Leaving
// the page (or hiding it) with edits pending saves them, and a reload asks first.

import { ApiError, onSyncStatus } from "/static/js/api.js";

export const SAVE_DELAY_MS = 600;

/**
 * @param {{status: HTMLElement, save: () => Promise<any>, delay?: number}} options
 */
export function createAutosave({ status, save, delay = SAVE_DELAY_MS }) {
  let revision = 0; // bumped by every edit
  let savedRevision = 0; // the revision the server has
  let timer = null;
  let inFlight = null;
  let syncStatus = "ok";

  onSyncStatus((next) => {
    syncStatus = next;
  });

  const autosave = {
    /** Why the last save failed ("" once saved). */
    error: "",

    /** Whether there are edits the server does not have yet. */
    pending: () => revision !== savedRevision,

    /** Show `text` in the save status; kind: ok | pending | warn | error (app.css). */
    show(text, kind = "") {
      status.textContent = text;
      status.dataset.kind = kind;
    },

    /** Say "Saved" (or saved but not backed up) if nothing is left to save. */
    settled() {
      if (autosave.pending() || inFlight) return;
      if (syncStatus === "failed" || syncStatus === "conflict") {
        autosave.show("Saved here, not backed up yet", "warn");
      } else {
        autosave.show("Saved", "ok");
      }
    },

    /** Call after every edit: it is saved `delay` ms after the last one. */
    edited() {
      revision += 1;
      autosave.show("Unsaved changes", "pending");
      clearTimeout(timer);
      timer = setTimeout(() => autosave.flush(), delay);
    },

    /** Save now, until the server has the latest edit. Resolves true when saved. */
    async flush() {
      clearTimeout(timer);
      timer = null;
      while (revision !== savedRevision) {
        if (inFlight) {
          await inFlight.catch(() => {});
          continue;
        }
        const sending = revision;
        autosave.show("Saving…", "pending");
        inFlight = Promise.resolve().then(save);
        try {
          await inFlight;
          savedRevision = sending;
          autosave.error = "";
        } catch (err) {
          autosave.error = err instanceof ApiError ? err.error : "Could not save.";
          showFailure();
          return false;
        } finally {
          inFlight = null;
        }
      }
      autosave.settled();
      return true;
    },
  };

  function showFailure() {
    autosave.show(`Not saved: ${autosave.error} `, "error");
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link";
    retry.dataset.testid = "save-retry";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => autosave.flush());
    status.append(retry);
  }

  window.addEventListener("beforeunload", (event) => {
    if (!autosave.pending()) return;
    autosave.flush();
    event.preventDefault();
    event.returnValue = "";
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && autosave.pending()) autosave.flush();
  });

  return autosave;
}
