// The editors' panels as tabs on a phone (app.css, "Phone layout"). The tab bar
// (.panel-tabs, one button[data-tab] per panel) and the panels ([data-panel]) are in the
// template; this only keeps #editor's data-tab and the buttons' aria-selected in step.
// The CSS hides the other panels only at phone width, so on a tablet or a desktop every
// panel stays where it was whatever tab was picked.
const editor = document.getElementById("editor");
const bar = editor && editor.querySelector(".panel-tabs");

function select(tab, { focus = false } = {}) {
  editor.dataset.tab = tab.dataset.tab;
  for (const other of bar.querySelectorAll("[data-tab]")) {
    const on = other === tab;
    other.setAttribute("aria-selected", String(on));
    other.tabIndex = on ? 0 : -1;
  }
  if (focus) tab.focus();
}

if (bar) {
  const tabs = [...bar.querySelectorAll("[data-tab]")];
  select(tabs.find((tab) => tab.getAttribute("aria-selected") === "true") || tabs[0]);
  bar.addEventListener("click", (event) => {
    const tab = event.target.closest("[data-tab]");
    if (tab) select(tab);
  });
  // The tablist keys: arrows move between tabs, Home / End to the first / last.
  bar.addEventListener("keydown", (event) => {
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    event.stopPropagation(); // not the player's frame steps
    select(tabs[(next + tabs.length) % tabs.length], { focus: true });
  });
}
