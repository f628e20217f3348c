/** Most characters of peer-supplied text the agent keeps (error messages, rejection details). */
export const MAX_PEER_TEXT = 1024;

// C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Peer text as data: cut to `max` characters, control characters escaped as
 * \u{…}, so a peer cannot forge log lines, terminal escapes or huge messages.
 */
export function cleanText(value: string, max = MAX_PEER_TEXT): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return cut.replace(CONTROL, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

/**
 * A description of any thrown value that never throws itself: a handler may
 * throw an object built from peer data whose `message` is a getter that throws,
 * whose `toString` is not a function, or that has no prototype.
 */
export function describeThrown(value: unknown): string {
  try {
    if (typeof value === 'string') return cleanText(value);
    if (value === null || value === undefined || typeof value !== 'object') return cleanText(String(value));
    let message: unknown;
    try {
      message = (value as { message?: unknown }).message;
    } catch {
      message = undefined;
    }
    if (typeof message === 'string') return cleanText(message);
    return value instanceof Error ? 'error without a message' : 'a thrown non-Error value';
  } catch {
    return 'an undescribable thrown value';
  }
}
