// What an HLS player needs of a media playlist (RFC 8216), for the k6 scenarios: its target
// duration, media sequence, ENDLIST and segments, with each URI resolved against the
// playlist's URL (§4.1: relative URIs are relative to the playlist's URL). k6 has no URL
// class, so resolution (RFC 3986 §5.2) is written here. Pure: no k6 imports, no clock.

// One media playlist: `{targetDuration, mediaSequence, endlist, segments: [{seq, duration, url}]}`.
export function parsePlaylist(text, playlistUrl) {
  const lines = String(text).split(/\r?\n/);
  if (lines[0].trim() !== "#EXTM3U") {
    throw new Error(`not an M3U8 playlist: ${playlistUrl}`); // §4.3.1.1
  }
  const playlist = { targetDuration: 0, mediaSequence: 0, endlist: false, segments: [] };
  let duration = null;
  for (const raw of lines.slice(1)) {
    const line = raw.trim();
    if (line === "") {
      continue;
    } else if (line.startsWith("#EXT-X-TARGETDURATION:")) {
      playlist.targetDuration = Number(line.slice(22)); // §4.3.3.1
    } else if (line.startsWith("#EXT-X-MEDIA-SEQUENCE:")) {
      playlist.mediaSequence = Number(line.slice(22)); // §4.3.3.2
    } else if (line === "#EXT-X-ENDLIST") {
      playlist.endlist = true; // §4.3.3.4
    } else if (line.startsWith("#EXTINF:")) {
      duration = parseFloat(line.slice(8)); // §4.3.2.1: "<duration>,[<title>]"
    } else if (!line.startsWith("#")) {
      const seq = playlist.mediaSequence + playlist.segments.length; // §6.3.5
      playlist.segments.push({ seq, duration: duration || 0, url: resolveUrl(playlistUrl, line) });
      duration = null;
    }
  }
  if (!(playlist.targetDuration > 0)) {
    throw new Error(`no #EXT-X-TARGETDURATION in ${playlistUrl}`);
  }
  return playlist;
}

const URL_PARTS = /^([a-zA-Z][a-zA-Z0-9+.-]*:)?(\/\/[^/?#]*)?([^?#]*)(\?[^#]*)?(#.*)?$/;

// `reference` resolved against the absolute URL `base` (RFC 3986 §5.2.2, strict parser).
export function resolveUrl(base, reference) {
  const [, scheme, authority, path, query = ""] = URL_PARTS.exec(reference);
  if (scheme) {
    return scheme + (authority || "") + removeDotSegments(path) + query;
  }
  const [, baseScheme, baseAuthority = "", basePath, baseQuery = ""] = URL_PARTS.exec(base);
  if (authority !== undefined) {
    return baseScheme + authority + removeDotSegments(path) + query;
  }
  if (path === "") {
    return baseScheme + baseAuthority + basePath + (query || baseQuery);
  }
  if (path.startsWith("/")) {
    return baseScheme + baseAuthority + removeDotSegments(path) + query;
  }
  // §5.2.3: merge with the base path up to its last "/".
  const merged =
    baseAuthority && basePath === "" ? `/${path}` : basePath.replace(/[^/]*$/, "") + path;
  return baseScheme + baseAuthority + removeDotSegments(merged) + query;
}

// RFC 3986 §5.2.4, on whole segments.
function removeDotSegments(path) {
  const output = [];
  const segments = path.split("/");
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === "..") {
      if (output.length > 1) output.pop();
      if (last) output.push("");
    } else if (segment === ".") {
      if (last) output.push("");
    } else {
      output.push(segment);
    }
  });
  return output.join("/");
}
