// Annotate mode: scrub a whole game with its filmstrip, mark plays with the keyboard.
//
// Keys (not while typing in a field):
//   I / O        mark the in / out point at the playhead
//   J / K / L    shuttle: back 2 s (again: 4 s, 8 s…) / pause / play forward (again: 2×, 4×)
//   ← / →        one frame back / forward (paused)
//   Enter        add the play between the marks
// A play in the list: click its times to watch it, change its name, rating or tags
// (saved at once), or delete it.
//
// While the game's media job runs (probe, poster, filmstrip), its progress is shown
// from the job's WebSocket (exportprogress.js's watcher) and the page reloads when done.

import { api } from "/static/js/api.js";
import { watchExport } from "/static/js/exportprogress.js";
import { formatTime, rememberSound } from "/static/js/player.js";
import { $, clamp, el, round } from "/static/js/util.js";

const game = JSON.parse($("game-data").textContent);
const video = $("game-video");
rememberSound(video); // the editors' sound setting (player.js), through the video's own controls
const marks = { in: null, out: null };
let shuttle = 0; // L presses since the last pause: the forward rate is 2^(n-1)
let rewind = 0; // J presses in a row

const fps = () => game.fps || 30;
const now = () => video.currentTime || 0;

function showError(message) {
  $("play-error").textContent = message || "";
  $("play-error").hidden = !message;
}

// --- the media job, while the game is being prepared -------------------------------------

function showState() {
  const box = $("game-state");
  const ready = game.status === "ready";
  $("annotate").hidden = !ready;
  box.hidden = ready;
  if (game.status === "failed") {
    box.textContent = game.status_message || "This game's video could not be prepared.";
    box.classList.add("error");
    return;
  }
  if (!ready) {
    box.textContent = "Preparing the game: reading the video, making the filmstrip…";
    if (game.media_job_id) {
      watchExport(game.media_job_id, (job) => {
        if (job.status === "complete") window.location.reload();
        else if (job.status === "error") box.textContent = job.error;
        else box.textContent = `Preparing the game: ${job.message || job.phase} (${job.progress}%)`;
      });
    }
  }
}

// --- the filmstrip -------------------------------------------------------------------------

function renderFilmstrip() {
  const strip = game.filmstrip;
  const holder = $("filmstrip");
  if (!strip || !strip.url) return;
  const tiles = strip.times.map((t, i) => {
    const column = i % strip.columns;
    const row = Math.floor(i / strip.columns);
    return el("button", {
      type: "button",
      class: "filmstrip-tile",
      "data-testid": "filmstrip-tile",
      title: formatTime(t),
      "aria-label": `Jump to ${formatTime(t)}`,
      style:
        `background-image:url("${strip.url}");` +
        `background-position:-${column * strip.tile_width}px -${row * strip.tile_height}px;` +
        `width:${strip.tile_width}px;height:${strip.tile_height}px`,
      onclick: () => seek(t),
    });
  });
  const playhead = el("span", { class: "filmstrip-playhead", "data-testid": "filmstrip-playhead" });
  holder.replaceChildren(...tiles, playhead);
}

function movePlayhead() {
  const playhead = document.querySelector(".filmstrip-playhead");
  if (!playhead || !game.duration) return;
  playhead.style.left = `${(100 * now()) / game.duration}%`;
}

// --- moving through the game ---------------------------------------------------------------

function seek(t) {
  video.currentTime = clamp(t, 0, game.duration || video.duration || 0);
}

function pause() {
  video.pause();
  video.playbackRate = 1;
  shuttle = 0;
  rewind = 0;
}

const KEYS = {
  i: () => setMark("in", now()),
  o: () => setMark("out", now()),
  k: () => (video.paused ? video.play().catch(() => {}) : pause()),
  l: () => {
    rewind = 0;
    shuttle = Math.min(shuttle + 1, 4);
    video.playbackRate = 2 ** (shuttle - 1);
    video.play().catch(() => {});
  },
  j: () => {
    // Browsers do not play backwards: each press jumps further back instead.
    video.pause();
    shuttle = 0;
    rewind = Math.min(rewind + 1, 5);
    seek(now() - 2 ** rewind);
  },
  ArrowLeft: () => {
    pause();
    seek((Math.round(now() * fps()) - 1) / fps());
  },
  ArrowRight: () => {
    pause();
    seek((Math.round(now() * fps()) + 1) / fps());
  },
  Enter: () => addPlay(),
};

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || game.status !== "ready") return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const action = KEYS[key];
  if (!action) return;
  // Enter also adds the play from the name and tags fields; the other keys are text there.
  if (typing(event.target) && !(key === "Enter" && event.target.tagName === "INPUT")) return;
  event.preventDefault();
  action();
});

// --- marking plays -------------------------------------------------------------------------

function setMark(which, t) {
  marks[which] = round(t, 3);
  $(`mark-${which}`).textContent = formatTime(marks[which]);
  showError("");
}

function tagsOf(text) {
  return text.split(",").map((tag) => tag.trim()).filter(Boolean);
}

async function addPlay() {
  if (marks.in === null || marks.out === null) {
    showError("Mark the in point (I) and the out point (O) first.");
    return;
  }
  const body = {
    start: Math.min(marks.in, marks.out),
    end: Math.max(marks.in, marks.out),
    name: $("play-name").value,
    tags: tagsOf($("play-tags").value),
    rating: $("play-rating").value ? Number($("play-rating").value) : null,
  };
  try {
    const play = await api.post(`/api/games/${game.id}/plays`, body);
    game.plays.push(play);
    game.plays.sort((a, b) => a.start - b.start);
    marks.in = marks.out = null;
    $("mark-in").textContent = $("mark-out").textContent = "–";
    $("play-name").value = "";
    renderPlays();
    showError("");
  } catch (err) {
    showError(err.error || String(err));
  }
}

async function savePlay(play, change) {
  try {
    Object.assign(play, await api.patch(`/api/games/${game.id}/plays/${play.id}`, change));
    showError("");
  } catch (err) {
    showError(err.error || String(err));
  }
  renderPlays();
}

function ratingSelect(play) {
  const options = [el("option", { value: "", text: "–", selected: play.rating === null })];
  for (let n = 1; n <= 5; n++) {
    options.push(el("option", { value: String(n), text: `${n} ★`, selected: play.rating === n }));
  }
  return el("select", {
    "aria-label": "Rating",
    "data-testid": "play-item-rating",
    onchange: (e) => savePlay(play, { rating: e.target.value ? Number(e.target.value) : null }),
  }, ...options);
}

function playItem(play) {
  return el(
    "li",
    { class: "play-item", "data-testid": "play-item", "data-play-id": String(play.id) },
    el("button", {
      type: "button",
      class: "link play-times",
      "data-testid": "play-item-times",
      text: `${formatTime(play.start)} – ${formatTime(play.end)}`,
      onclick: () => {
        seek(play.start);
        video.play().catch(() => {});
      },
    }),
    el("input", {
      value: play.name,
      placeholder: "Name",
      "aria-label": "Play name",
      "data-testid": "play-item-name",
      onchange: (e) => savePlay(play, { name: e.target.value }),
    }),
    el("input", {
      value: play.tags.join(", "),
      placeholder: "Tags",
      "aria-label": "Tags",
      "data-testid": "play-item-tags",
      onchange: (e) => savePlay(play, { tags: tagsOf(e.target.value) }),
    }),
    ratingSelect(play),
    el("button", {
      type: "button",
      class: "link danger",
      "data-testid": "play-item-delete",
      text: "Delete",
      onclick: async () => {
        await api.del(`/api/games/${game.id}/plays/${play.id}`);
        game.plays = game.plays.filter((p) => p.id !== play.id);
        renderPlays();
      },
    }),
  );
}

function renderPlays() {
  const list = $("play-list");
  list.replaceChildren(...game.plays.map(playItem));
  if (!game.plays.length) list.append(el("li", { class: "muted small", text: "No plays yet: mark one with I and O." }));
}

video.addEventListener("timeupdate", movePlayhead);
video.addEventListener("ended", pause);
$("play-add").addEventListener("click", addPlay);

// --- the game's details, and deleting it -------------------------------------------------

$("game-details").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const saved = await api.patch(`/api/games/${game.id}`, {
      name: $("detail-name").value,
      played_on: $("detail-date").value || null,
      opponent: $("detail-opponent").value,
    });
    document.querySelector("[data-testid=game-title]").textContent = saved.name;
    $("detail-note").textContent = "Saved.";
  } catch (err) {
    $("detail-note").textContent = err.error || String(err);
  }
});

$("game-delete").addEventListener("click", async () => {
  const url = `/api/games/${game.id}`;
  try {
    await api.del(url);
  } catch (err) {
    // A game with plays goes only when asked again: the answer says how many.
    if (err.code !== "game_has_plays" || !window.confirm(`${err.error} Delete it anyway?`)) {
      $("detail-note").textContent = err.code === "game_has_plays" ? "" : err.error;
      return;
    }
    try {
      await api.del(`${url}?with_plays=1`);
    } catch (again) {
      $("detail-note").textContent = again.error || String(again);
      return;
    }
  }
  window.location.href = "/games/";
});

showState();
renderFilmstrip();
renderPlays();
