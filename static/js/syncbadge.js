// The header's sync badge (#sync-badge): is the user's work safely stored?
//
// Quiet (hidden) while everything is saved. Every API response's X-Sync-Status
// reaches it through api.js; while the status is not ok it also polls
// GET /api/sync/status every 20 s, so it clears by itself once the server's retry
// loop succeeds. Clicking it when failed (or in conflict) calls POST /api/sync/retry.

import { api, ApiError, onSyncStatus, reportSyncStatus } from "/static/js/api.js";

const POLL_MS = 20000;
const TEXT = {
  ok: "",
  pending: "Saving…",
  failed: "Sync failed — click to retry",
  conflict: "Saved elsewhere first — your version was kept as a copy. Click to dismiss",
};
const TITLE = {
  pending: "Your latest changes are being stored.",
  failed: "Your changes are kept on this server but are not backed up yet.",
  conflict: "Another session saved first. Your version was kept as a conflict copy an admin can restore.",
};

const badge = document.getElementById("sync-badge");
const note = document.getElementById("sync-note");

if (badge) {
  let status = "ok";
  let timer = null;
  let retrying = false;
  let noteTimer = null;

  const say = (text, kind) => {
    if (!note) return;
    note.textContent = text;
    note.dataset.kind = kind || "";
    clearTimeout(noteTimer);
    if (text) noteTimer = setTimeout(() => (note.textContent = ""), 5000);
  };

  const poll = async () => {
    try {
      const data = await api.get("/api/sync/status"); // its header updates the badge
      if (data && data.last_error && status !== "ok") badge.title = data.last_error;
    } catch {
      /* the header (if any) already said it; keep polling */
    }
  };

  const schedule = () => {
    if (status === "ok") {
      clearInterval(timer);
      timer = null;
    } else if (timer === null) {
      timer = setInterval(poll, POLL_MS);
    }
  };

  const show = (next) => {
    status = next;
    badge.dataset.status = next;
    badge.textContent = TEXT[next];
    badge.title = TITLE[next] || "";
    badge.hidden = next === "ok";
    // Only a failed or conflicting state has something to click.
    badge.disabled = !(next === "failed" || next === "conflict");
    badge.setAttribute("aria-label", TEXT[next] || "All changes saved");
    schedule();
  };

  badge.addEventListener("click", async () => {
    if (retrying || !(status === "failed" || status === "conflict")) return;
    retrying = true;
    const before = status;
    badge.textContent = before === "failed" ? "Retrying…" : "Dismissing…";
    try {
      await api.post("/api/sync/retry");
      say("All changes saved", "ok");
    } catch (err) {
      const data = err instanceof ApiError ? err.data : null;
      if (data && data.status) reportSyncStatus(data.status);
      const reason = (data && data.last_error) || (err && err.error) || "unknown error";
      say(`Still not saved: ${reason}`, "bad");
    } finally {
      retrying = false;
      show(status); // restore the exact text for the state the response reported
    }
  });

  onSyncStatus(show);
  show(badge.dataset.status || "ok");
  poll(); // the page itself carries no header: ask once
}
