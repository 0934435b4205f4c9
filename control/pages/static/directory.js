// The directory page: the stations listed by the server, kept current by the feed of
// every public station on air. With a filter applied, only the listed ones are updated
// (the server decided which match); without, stations coming on air are added and those
// gone off air removed.
import { follow, setText, songText } from "./live.js";

const list = document.getElementById("stations");
const empty = document.getElementById("empty");
const filtered = list.dataset.filtered === "true";

function itemOf(streamId) {
  return [...list.children].find((li) => li.dataset.streamId === streamId) || null;
}

function paragraph(className, ...children) {
  const p = document.createElement("p");
  p.className = className;
  p.append(...children);
  return p;
}

function span(className, text) {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = text;
  return s;
}

function build(station) {
  const li = document.createElement("li");
  li.className = "station";
  li.dataset.streamId = station.stream_id;
  const heading = document.createElement("h2");
  const link = document.createElement("a");
  link.className = "name";
  link.href = `/stations/${encodeURIComponent(station.stream_id)}`;
  link.textContent = station.name;
  heading.append(link);
  li.append(heading);
  if (station.genre) {
    const genre = paragraph("genre");
    genre.textContent = station.genre;
    li.append(genre);
  }
  li.append(
    paragraph("now", span("label", "Now playing:"), " ", span("title", "")),
    paragraph("count", span("listeners", "0"), " listening"),
  );
  return li;
}

function show(station) {
  let li = itemOf(station.stream_id);
  if (!li) {
    if (filtered) return;
    li = build(station);
    list.append(li);
  }
  setText(li.querySelector(".title"), songText(station.song));
  setText(li.querySelector(".listeners"), String(station.listeners));
}

function snapshot(body) {
  if (!filtered) {
    const live = new Set(body.stations.map((s) => s.stream_id));
    for (const li of [...list.children]) if (!live.has(li.dataset.streamId)) li.remove();
  }
  body.stations.forEach(show);
  empty.hidden = list.children.length > 0;
}

// A station this page does not show yet came on air: list it from `/v1/nowplaying`, a
// moment later (that answer is reused for half a second), once for a burst of events.
const REFRESH_DELAY_MS = 1000;
let pending = null;

function refreshSoon() {
  if (pending !== null) return;
  pending = setTimeout(async () => {
    pending = null;
    try {
      const response = await fetch("/v1/nowplaying");
      if (response.ok) snapshot(await response.json());
    } catch {
      // the next event tries again
    }
  }, REFRESH_DELAY_MS);
}

follow("/v1/nowplaying/events", {
  nowplaying: snapshot,
  title(data) {
    const li = itemOf(data.stream_id);
    if (li) setText(li.querySelector(".title"), songText(data.song));
    else if (!filtered) refreshSoon();
  },
  listeners(data) {
    const li = itemOf(data.stream_id);
    if (li) setText(li.querySelector(".listeners"), String(data.listeners));
    else if (!filtered) refreshSoon();
  },
});
