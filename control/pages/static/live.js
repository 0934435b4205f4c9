// The live feeds (server-sent events): `nowplaying` first (the state now), then `title`
// and `listeners` as they change. An EventSource reconnects by itself after a drop and
// gets a fresh `nowplaying`. Every text goes into the page with textContent, never as HTML.

export const NOTHING_PLAYING = "\u2014";

/** The text to show for a song of the feeds (null: the source names none). */
export function songText(song) {
  return song ? song.text : NOTHING_PLAYING;
}

/** Listen to `url`, calling `handlers[eventName](data)` with each event's JSON. */
export function follow(url, handlers) {
  const source = new EventSource(url);
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      handler(data);
    });
  }
  return source;
}

/** A list item's or element's child by selector, with its text set. */
export function setText(element, text) {
  if (element) element.textContent = text;
}
