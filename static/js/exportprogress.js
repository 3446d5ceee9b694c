// Export progress, reusable by every page that starts an export (framing, overlay).
//
//   import { createExportProgress } from "/static/js/exportprogress.js";
//   const exporter = createExportProgress({
//     container: document.querySelector("#export-slot"),   // the module renders into it
//     projectId: 7,
//     kind: "framing",                                      // or "overlay"
//     button: document.querySelector("[data-testid=export-button]"),  // optional
//     onComplete: (job) => showWorkingVideo(job.working_video_id),
//   });
//   exporter.resume();   // show an export still running after a reload
//
// What it renders (hidden until there is something to show), with these test ids:
//   export-progress  role=progressbar, aria-valuenow 0-100
//   export-phase     what the export is doing now ("Rendering clips", "Export complete")
//   export-error     the error sentence, with
//   export-retry     a button: POST /api/exports/<id>/retry for a retryable job,
//                    otherwise starts the export again
//   export-cancel    "Cancel export", shown while a job is pending or processing:
//                    DELETE /api/exports/<id>. A pending job stops at once; a running one
//                    at its next check ("Cancelling…" until then). The server decides: a
//                    job already saving its video completes, and the box says so.
//
// Live updates come over the WebSocket /ws/exports/<job id>/ (message shape: ExportJob.to_message:
// {job_id, kind, project_id, status, progress, phase, message, working_video_id?,
// final_video_id?, committed_version?, error?, error_code?, retryable?}). A dropped socket reconnects with
// backoff (1 s, 2 s, 4 s ... 15 s) and re-reads GET /api/exports/<id> each time, so
// nothing said while disconnected is missed.

import { api, ApiError } from "/static/js/api.js";

/** Statuses after which a job will not change by itself. */
export const FINISHED = new Set(["complete", "error", "cancelled"]);

const PHASE_TEXT = {
  queued: "Waiting for a worker…",
  starting: "Preparing the export…",
  saving: "Saving the video…",
  complete: "Export complete",
  cancelled: "Export cancelled",
  error: "Export failed",
};

function socketUrl(jobId) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws/exports/${encodeURIComponent(jobId)}/`;
}

/**
 * Follow one export job live. Calls `onMessage(job)` with every state seen (the
 * WebSocket's messages and the re-read after each reconnect), and stops by itself
 * once the job is finished (complete, error, cancelled).
 * @param {string} jobId
 * @param {(job: object) => void} onMessage
 * @param {{onConnection?: (connected: boolean) => void}} [options]
 * @returns {{close: () => void}} stop watching
 */
export function watchExport(jobId, onMessage, options = {}) {
  let socket = null;
  let closed = false;
  let attempt = 0;
  let timer = null;
  let finished = false;

  const deliver = (job) => {
    if (closed || !job || job.job_id !== jobId) return;
    onMessage(job);
    if (FINISHED.has(job.status)) {
      finished = true;
      stop();
    }
  };

  const reread = async () => {
    try {
      deliver(await api.get(`/api/exports/${encodeURIComponent(jobId)}`));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        closed = true; // the job is gone (or never was ours): nothing to follow
      }
    }
  };

  const connect = () => {
    if (closed || finished) return;
    socket = new WebSocket(socketUrl(jobId));
    socket.addEventListener("open", () => {
      const reconnecting = attempt > 0;
      attempt = 0;
      if (options.onConnection) options.onConnection(true);
      // The consumer sends the current state on connect; after a reconnect we also
      // re-read it over HTTP, which works even if the socket drops again at once.
      if (reconnecting) reread();
    });
    socket.addEventListener("message", (event) => {
      try {
        deliver(JSON.parse(event.data));
      } catch {
        /* not JSON: ignore */
      }
    });
    socket.addEventListener("close", (event) => {
      socket = null;
      if (closed || finished) return;
      if (event.code === 4401 || event.code === 4404) {
        reread(); // signed out or not ours: say what HTTP says, do not hammer
        return;
      }
      if (options.onConnection) options.onConnection(false);
      const delay = Math.min(15000, 1000 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
      attempt += 1;
      timer = setTimeout(async () => {
        timer = null;
        await reread();
        connect();
      }, delay);
    });
  };

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
    socket = null;
  }

  connect();
  return {
    close() {
      closed = true;
      stop();
    },
  };
}

/**
 * The export box: start button wiring, progress bar, phase, error + retry, resume.
 * @param {object} options
 * @param {HTMLElement} options.container where the box is rendered (its content is replaced)
 * @param {number|string} options.projectId
 * @param {"framing"|"overlay"} options.kind
 * @param {HTMLButtonElement} [options.button] starts the export on click; disabled while one runs
 * @param {() => object} [options.startBody] extra POST fields, e.g. () => ({upscale: true})
 * @param {() => (void|Promise<void>)} [options.beforeStart] awaited before each start or
 *   retry, e.g. to save pending edits first; if it throws, its message is shown as the error
 * @param {(job: object) => void} [options.onComplete] once per job, when it reports complete
 * @param {(job: object) => void} [options.onUpdate] every state seen
 * @returns {{
 *   start: () => Promise<object|null>,
 *   resume: () => Promise<object|null>,
 *   retry: () => Promise<object|null>,
 *   cancel: () => Promise<object|null>,
 *   readonly job: object|null,
 *   readonly running: boolean,
 *   destroy: () => void,
 * }} start(): POST a new export (or join the running one); resume(): follow the newest
 *   pending/processing export of this kind (null if none); retry(): what the retry button does;
 *   cancel(): what the cancel button does (DELETE, then the server's answer is shown).
 */
export function createExportProgress(options) {
  const { container, projectId, kind, button } = options;
  container.innerHTML = `
    <div class="export-box" hidden>
      <div class="export-line">
        <span class="export-phase" data-testid="export-phase" aria-live="polite"></span>
        <span class="export-percent muted" aria-hidden="true"></span>
      </div>
      <div class="progress" data-testid="export-progress" role="progressbar"
           aria-label="Export progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">
        <div class="progress-fill"></div>
      </div>
      <div class="export-controls" hidden>
        <button type="button" class="small-button export-cancel" data-testid="export-cancel">Cancel export</button>
        <span class="export-cancel-error form-error small" role="alert" hidden></span>
      </div>
      <p class="export-connection muted" hidden>Connection lost, reconnecting…</p>
      <div class="export-failure" hidden>
        <p class="export-error" data-testid="export-error" role="alert"></p>
        <button type="button" class="export-retry" data-testid="export-retry">Retry export</button>
      </div>
    </div>`;
  const box = container.querySelector(".export-box");
  const phase = container.querySelector(".export-phase");
  const percent = container.querySelector(".export-percent");
  const bar = container.querySelector(".progress");
  const fill = container.querySelector(".progress-fill");
  const connection = container.querySelector(".export-connection");
  const failure = container.querySelector(".export-failure");
  const errorText = container.querySelector(".export-error");
  const retryButton = container.querySelector(".export-retry");
  const controls = container.querySelector(".export-controls");
  const cancelButton = container.querySelector(".export-cancel");
  const cancelError = container.querySelector(".export-cancel-error");

  let job = null;
  let watcher = null;
  let busy = false; // a start/retry request is in flight
  let cancelling = null; // the job id a cancel was asked for (until it finishes)
  const completed = new Set();

  const running = () => busy || (job !== null && !FINISHED.has(job.status));

  const syncButton = () => {
    if (button) button.disabled = running();
  };

  const showError = (text) => {
    box.hidden = false;
    failure.hidden = false;
    // Without a job (the start was refused) there is no progress to show.
    box.classList.toggle("without-job", job === null || job.status !== "error");
    if (job === null || job.status !== "error") retryButton.textContent = "Try again";
    errorText.textContent = text;
    retryButton.disabled = false;
    syncButton();
  };

  const render = (next) => {
    job = next;
    box.hidden = false;
    box.classList.remove("without-job");
    const value = Math.max(0, Math.min(100, Math.round(Number(next.progress) || 0)));
    bar.setAttribute("aria-valuenow", String(value));
    bar.dataset.status = next.status;
    fill.style.width = `${value}%`;
    percent.textContent = `${value}%`;
    const text = next.message || PHASE_TEXT[next.phase] || next.phase || "";
    phase.textContent = next.status === "error" ? "Export failed" : text;
    // "complete" comes with the saved version that holds the video: say it is saved.
    if (next.status === "complete" && next.committed_version) {
      phase.textContent = `${text} · saved`;
    }
    if (next.status === "error") {
      showError(next.error || next.message || "The export failed.");
      retryButton.textContent = next.retryable ? "Retry export" : "Export again";
    } else {
      failure.hidden = true;
      errorText.textContent = "";
    }
    if (FINISHED.has(next.status)) connection.hidden = true;
    const active = !FINISHED.has(next.status);
    if (next.cancel_requested && active) cancelling = next.job_id; // asked before a reload
    const stopping = active && cancelling === next.job_id;
    controls.hidden = !active;
    cancelButton.disabled = stopping;
    cancelButton.textContent = stopping ? "Cancelling…" : "Cancel export";
    if (stopping && next.status === "processing") {
      // Saving: past the last check, the export finishes whatever was asked.
      phase.textContent = next.phase === "saving" ? `${text} (too late to cancel)` : "Cancelling…";
    }
    if (!active) cancelError.hidden = true;
    syncButton();
    if (options.onUpdate) options.onUpdate(next);
    if (next.status === "complete" && !completed.has(next.job_id)) {
      completed.add(next.job_id);
      if (options.onComplete) options.onComplete(next);
    }
  };

  const follow = (next) => {
    if (watcher) watcher.close();
    watcher = null;
    render(next);
    if (!FINISHED.has(next.status)) {
      watcher = watchExport(next.job_id, render, {
        onConnection: (connected) => {
          connection.hidden = connected;
        },
      });
    }
  };

  const act = async (fn) => {
    if (busy) return null;
    busy = true;
    syncButton();
    retryButton.disabled = true;
    try {
      if (options.beforeStart) await options.beforeStart();
      const next = await fn();
      busy = false;
      follow(next);
      return next;
    } catch (err) {
      busy = false;
      const text = err instanceof ApiError ? err.error : err && err.message;
      showError(text || "The export could not be started.");
      return null;
    }
  };

  const start = () =>
    act(() =>
      api.post(`/api/projects/${projectId}/exports`, {
        kind,
        ...(options.startBody ? options.startBody() : {}),
      }),
    );

  const retry = () => {
    if (job && job.status === "error" && job.retryable) {
      return act(() => api.post(`/api/exports/${encodeURIComponent(job.job_id)}/retry`));
    }
    return start();
  };

  const resume = async () => {
    try {
      const data = await api.get(`/api/projects/${projectId}/exports`);
      const active = (data.exports || []).find(
        (j) => j.kind === kind && (j.status === "pending" || j.status === "processing"),
      );
      if (active && !running()) follow(active);
      return active || null;
    } catch {
      return null; // nothing to resume is not worth an error message
    }
  };

  /** Ask the server to stop the job; what it answers (or reports next) is shown. */
  const cancel = async () => {
    if (!job || FINISHED.has(job.status)) return null;
    const asked = job;
    cancelling = asked.job_id;
    cancelButton.disabled = true;
    cancelButton.textContent = "Cancelling…";
    cancelError.hidden = true;
    try {
      const answer = await api.del(`/api/exports/${encodeURIComponent(asked.job_id)}`);
      // The socket may already have said more (complete, cancelled): never go back.
      if (job && job.job_id === answer.job_id && FINISHED.has(job.status)) return job;
      if (FINISHED.has(answer.status)) {
        if (watcher) watcher.close();
        watcher = null;
        render(answer);
      } else if (job && job.job_id === answer.job_id) {
        render({ ...answer, progress: Math.max(Number(answer.progress) || 0, Number(job.progress) || 0) });
      }
      return answer;
    } catch (err) {
      cancelling = null;
      cancelButton.disabled = false;
      cancelButton.textContent = "Cancel export";
      const text = err instanceof ApiError ? err.error : "";
      cancelError.textContent = `Could not cancel: ${text || "the server did not answer."}`;
      cancelError.hidden = false;
      return null;
    }
  };

  const onButton = () => start();
  if (button) button.addEventListener("click", onButton);
  retryButton.addEventListener("click", () => retry());
  cancelButton.addEventListener("click", () => cancel());

  return {
    start,
    resume,
    retry,
    cancel,
    get job() {
      return job;
    },
    get running() {
      return running();
    },
    destroy() {
      if (watcher) watcher.close();
      watcher = null;
      if (button) button.removeEventListener("click", onButton);
      container.innerHTML = "";
    },
  };
}
