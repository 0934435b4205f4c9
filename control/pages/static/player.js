// The player: the browser's own <audio> on the stream's live.mp3 route, started and
// stopped by a button (keyboard operable, labelled by its text). Stopping drops the
// buffer, so playing again is live again rather than where the stop left off.

/** Set up the `.player` inside `root`; null when there is none (a paywalled stream). */
export function setupPlayer(root) {
  const player = root.querySelector(".player");
  if (!player) return null;
  const button = player.querySelector(".play");
  const audio = player.querySelector("audio");
  const offline = player.querySelector(".offline");
  const src = player.dataset.src;
  let playing = false;
  audio.src = src; // preload="none": nothing is fetched until play

  const show = (on) => {
    playing = on;
    button.textContent = on ? "Stop" : "Play";
  };
  const stop = () => {
    audio.pause();
    audio.src = src;
    show(false);
  };
  button.addEventListener("click", () => {
    if (playing) {
      stop();
      return;
    }
    button.textContent = "Loading\u2026";
    audio.play().catch(() => show(false));
  });
  audio.addEventListener("playing", () => show(true));
  audio.addEventListener("pause", () => show(false));
  audio.addEventListener("error", () => show(false));
  return {
    setOnAir(onAir) {
      button.disabled = !onAir;
      if (offline) offline.hidden = onAir;
      if (!onAir && playing) stop();
    },
  };
}
