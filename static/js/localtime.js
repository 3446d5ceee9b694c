// Times the server writes (in its own zone, UTC in production) shown in the reader's
// own zone and language: every <time datetime="…" data-local="datetime|date-time">.
// The server's text stays as it was if the browser cannot read the timestamp.

const STYLES = {
  datetime: { dateStyle: "medium", timeStyle: "medium" },
  "date-time": { dateStyle: "medium", timeStyle: "short" },
};

export function localise(root = document) {
  for (const node of root.querySelectorAll("time[datetime][data-local]")) {
    const when = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    const style = STYLES[node.dataset.local] || STYLES.datetime;
    node.title = node.textContent.trim();
    node.textContent = new Intl.DateTimeFormat(undefined, style).format(when);
  }
}

localise();
