// What the Redis reader thread hands the collector thread: one transferable
// buffer of frames, each a 4-byte length (little-endian), a kind byte, then
// that many bytes: a message body's JSON text (UTF-8), or the reason its
// envelope was refused (ASCII).

export const FRAME_HEADER = 5;
/** A body's JSON text, for decodeEventBody. */
export const FRAME_BODY = 0;
/** The DropReason an envelope was refused for. */
export const FRAME_REFUSED = 1;
