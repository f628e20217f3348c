/**
 * Output of one command run: results on stdout (text, or one JSON document
 * with --json), progress and warnings on stderr so scripts can read stdout.
 */
export interface Output {
  readonly json: boolean;
  /** A result line on stdout (text mode only). */
  line(text?: string): void;
  /** The result as JSON on stdout (json mode), or nothing. */
  result(value: unknown): void;
  /** A progress line on stderr, with the seconds since the command started. */
  progress(text: string): void;
  warn(text: string): void;
}

export function createOutput(json: boolean, quiet = false): Output {
  const started = performance.now();
  return {
    json,
    line(text = '') {
      if (!json) process.stdout.write(`${text}\n`);
    },
    result(value) {
      if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    progress(text) {
      if (quiet) return;
      const s = ((performance.now() - started) / 1000).toFixed(1).padStart(5);
      process.stderr.write(`[${s}s] ${text}\n`);
    },
    warn(text) {
      process.stderr.write(`${text}\n`);
    },
  };
}

/** Pads columns of rows (strings) to a plain-text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}

export const shortDid = (did: string) => (did.length > 30 ? `${did.slice(0, 18)}…${did.slice(-6)}` : did);
