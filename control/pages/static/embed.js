// The embeddable player: a play button and the title, kept current by the stream's feed.
import { follow, setText, songText } from "./live.js";
import { setupPlayer } from "./player.js";

const root = document.querySelector("[data-stream-id]");
const player = setupPlayer(root);
const title = document.getElementById("now-title");

follow(`/v1/streams/${encodeURIComponent(root.dataset.streamId)}/events`, {
  nowplaying(body) {
    const station = body.stations[0];
    if (player) player.setOnAir(Boolean(station));
    if (station) setText(title, songText(station.song));
  },
  title(data) {
    setText(title, songText(data.song));
  },
});
