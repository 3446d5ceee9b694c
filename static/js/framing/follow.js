// "Follow the play": the server analyses the clip (a follow_play job, reframing/job.py)
// and proposes crop keyframes that keep the ball in the window. The proposal is drawn
// over the video (the path of the window's centre, a dot per keyframe, and the proposed
// window at the playhead, dashed) until the user accepts it (it becomes the clip's
// keyframes: an ordinary edit, autosaved and undoable) or discards it. Nothing changes
// the clip's own keyframes before "Accept".

import { api, ApiError } from "/static/js/api.js";
import { FINISHED, watchExport } from "/static/js/exportprogress.js";
import { CropPath } from "/static/js/interpolation.js";
import { $ } from "/static/js/util.js";

const SVG = "http://www.w3.org/2000/svg";
const PATH_STEP_S = 0.1; // how finely the centre's path is drawn

/**
 * @param {object} options
 *   projectId; aspect: the project's width / height; clip(): the clip being edited
 *   accept(keyframes): make them the clip's keyframes (the editor's edit)
 */
export function createFollow({ projectId, aspect, clip, video, accept }) {
  const button = $("follow-play");
  const panel = $("follow-panel");
  const status = $("follow-status");
  const bar = $("follow-progress");
  const cancelButton = $("follow-cancel");
  const acceptButton = $("follow-accept");
  const discardButton = $("follow-discard");
  const overlay = $("follow-overlay");
  const line = overlay.querySelector(".follow-path");
  const windowRect = overlay.querySelector(".follow-window");
  const dots = overlay.querySelector(".follow-keyframes");

  let job = null; // the running analysis
  let watcher = null;
  let proposal = null; // {clipId, keyframes, window, ball_seen}
  let path = null;

  function say(text, kind = "") {
    status.textContent = text;
    status.dataset.kind = kind;
  }

  function show(state) {
    panel.hidden = state === "idle";
    bar.hidden = state !== "running";
    cancelButton.hidden = state !== "running";
    acceptButton.hidden = discardButton.hidden = state !== "proposal";
    button.disabled = state === "running";
  }

  async function start() {
    const current = clip();
    if (!current) return;
    discard();
    show("running");
    bar.value = 0;
    say("Finding the play…");
    try {
      job = await api.post(`/api/projects/${projectId}/clips/${current.id}/follow`);
    } catch (err) {
      show("message");
      say(err instanceof ApiError ? err.error : "The analysis could not be started.", "error");
      return;
    }
    follow(job);
  }

  function follow(next) {
    if (watcher) watcher.close();
    update(next);
    if (!FINISHED.has(next.status)) watcher = watchExport(next.job_id, update);
  }

  function update(next) {
    job = next;
    bar.value = Number(next.progress) || 0;
    if (next.status === "complete") {
      watcher = null;
      received(next);
    } else if (next.status === "error") {
      show("message");
      say(`The analysis failed: ${next.error || next.message}`, "error");
    } else if (next.status === "cancelled") {
      show("message");
      say("Analysis cancelled. Your keyframes are as they were.");
    } else {
      say(next.cancel_requested ? "Cancelling…" : `Finding the play… ${bar.value}%`);
    }
  }

  function received(done) {
    const current = clip();
    proposal = { clipId: done.clip_id, ...done.proposal };
    if (!current || current.id !== proposal.clipId) {
      show("message");
      say("The proposal is for another clip: select it and follow the play again.");
      proposal = null;
      return;
    }
    const count = proposal.keyframes.length;
    const seen = Math.round(proposal.ball_seen * 100);
    show("proposal");
    say(`Proposal: ${count} keyframe${count === 1 ? "" : "s"}, the ball found in ${seen}% of the clip. Play it to preview, then accept or discard.`);
    draw(current);
  }

  function draw(current) {
    path = new CropPath(proposal.keyframes, current.width, current.height, aspect);
    overlay.setAttribute("viewBox", `0 0 ${current.width} ${current.height}`);
    const first = proposal.keyframes[0].time;
    const last = proposal.keyframes[proposal.keyframes.length - 1].time;
    const points = [];
    for (let t = first; t <= last + 1e-6; t += PATH_STEP_S) points.push(centre(path.at(t)));
    line.setAttribute("points", points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
    dots.replaceChildren(
      ...proposal.keyframes.map((k) => {
        const dot = document.createElementNS(SVG, "circle");
        const [x, y] = centre(k);
        dot.setAttribute("cx", x.toFixed(1));
        dot.setAttribute("cy", y.toFixed(1));
        dot.setAttribute("r", String(Math.max(3, current.height / 90)));
        return dot;
      }),
    );
    overlay.dataset.keyframes = String(proposal.keyframes.length);
    overlay.removeAttribute("hidden"); // an SVG element has no .hidden property
    showAt(video.currentTime);
  }

  /** The proposed window at time t (called as the playhead moves). */
  function showAt(t) {
    if (!path) return;
    const r = path.at(t);
    windowRect.setAttribute("x", r.x.toFixed(1));
    windowRect.setAttribute("y", r.y.toFixed(1));
    windowRect.setAttribute("width", r.width.toFixed(1));
    windowRect.setAttribute("height", r.height.toFixed(1));
  }

  function discard() {
    proposal = null;
    path = null;
    overlay.setAttribute("hidden", "");
    show("idle");
  }

  async function cancel() {
    if (!job) return;
    say("Cancelling…");
    try {
      update(await api.del(`/api/exports/${encodeURIComponent(job.job_id)}`));
    } catch (err) {
      say(`Could not cancel: ${err instanceof ApiError ? err.error : err}`, "error");
    }
  }

  button.addEventListener("click", start);
  cancelButton.addEventListener("click", cancel);
  discardButton.addEventListener("click", () => {
    discard();
  });
  acceptButton.addEventListener("click", () => {
    if (!proposal) return;
    const keyframes = proposal.keyframes.map((k) => ({ ...k }));
    discard();
    accept(keyframes);
  });

  return {
    showAt,
    /** Another clip is selected: a proposal on screen is about the old one. */
    clipChanged() {
      if (proposal) discard();
    },
  };
}

function centre(rect) {
  return [rect.x + rect.width / 2, rect.y + rect.height / 2];
}
