// A station page: now playing, listeners and the song history kept current by the
// stream's own feed; the player follows whether the station is on air.
import { follow, setText, songText } from "./live.js";
import { setupPlayer } from "./player.js";

const HISTORY_SIZE = 10;
const page = document.querySelector("[data-stream-id]");
const streamId = page.dataset.streamId;
const player = setupPlayer(page);
const title = document.getElementById("now-title");
const listeners = document.getElementById("listeners");
const status = document.getElementById("status");
const history = document.getElementById("history");

function onAir(live) {
  setText(status, live ? "On air" : "Off air");
  page.dataset.onAir = String(live);
  if (player) player.setOnAir(live);
}

function remember(song) {
  if (!history || !song) return;
  const item = document.createElement("li");
  const at = document.createElement("time");
  const now = new Date();
  at.dateTime = now.toISOString();
  at.textContent = now.toISOString().slice(11, 16);
  item.append(at, " ", song.text);
  history.prepend(item);
  while (history.children.length > HISTORY_SIZE) history.lastElementChild.remove();
}

follow(`/v1/streams/${encodeURIComponent(streamId)}/events`, {
  nowplaying(body) {
    const station = body.stations[0];
    onAir(Boolean(station));
    if (station) {
      setText(title, songText(station.song));
      setText(listeners, String(station.listeners));
    }
  },
  title(data) {
    setText(title, songText(data.song));
    remember(data.song);
  },
  listeners(data) {
    setText(listeners, String(data.listeners));
  },
});

const copy = document.getElementById("copy-hls");
if (copy) {
  const field = document.getElementById("hls-url");
  const said = document.getElementById("copied");
  copy.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      setText(said, "Copied.");
    } catch {
      setText(said, "Selected: press Ctrl+C to copy.");
    }
  });
}
