// The projects page: delete a project after a confirmation dialog.
// (Creating one is a plain form POST; the server redirects to the new project.)

import { api } from "/static/js/api.js";

const dialog = document.getElementById("confirm-dialog");
const text = dialog.querySelector(".confirm-text");
const error = dialog.querySelector(".confirm-error");
const ok = dialog.querySelector("[data-testid=confirm-ok]");
let card = null;

document.addEventListener("click", (event) => {
  const button = event.target.closest(".project-delete");
  if (!button) return;
  card = button.closest(".project-card");
  text.textContent = `“${card.dataset.projectName}”, its clips and its videos will be deleted. This cannot be undone.`;
  error.hidden = true;
  ok.disabled = false;
  dialog.showModal();
});

ok.addEventListener("click", async (event) => {
  event.preventDefault(); // stay open until the server has answered
  if (!card) return;
  ok.disabled = true;
  try {
    await api.del(`/api/projects/${card.dataset.projectId}`);
    const list = card.parentElement;
    card.remove();
    card = null;
    dialog.close("ok");
    if (list && !list.children.length) location.reload(); // show the empty state
  } catch (err) {
    error.textContent = err.error || "The project could not be deleted.";
    error.hidden = false;
    ok.disabled = false;
  }
});
