/** Longest `detail` a policy refusal carries, in UTF-16 code units. */
export const MAX_DETAIL_LENGTH = 1024;

// C0 and C1 controls, DEL, line/paragraph separators and bidi overrides/isolates:
// anything that could rewrite a log line or hide text from an operator.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escapeChar = (c: string): string => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

/**
 * Makes peer-influenced text safe to log and to put in a report: control
 * characters escaped as `\uXXXX`, at most `max` code units (a longer text
 * ends in `…`). Only the first `max` units of the input are ever scanned.
 */
export function safeText(text: string, max: number = MAX_DETAIL_LENGTH): string {
  const head = text.length > max ? text.slice(0, max) : text;
  const escaped = head.replace(UNSAFE, escapeChar);
  if (escaped.length <= max && head.length === text.length) return escaped;
  let cut = escaped.slice(0, max - 1);
  // Do not end inside an escape sequence or a surrogate pair.
  const partial = cut.lastIndexOf('\\u');
  if (partial !== -1 && partial > cut.length - 6) cut = cut.slice(0, partial);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut + '…';
}
