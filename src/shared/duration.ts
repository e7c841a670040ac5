import { InvalidInputError } from '../errors';

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Parses '90', '90s', '15m', '1h30m', '2d' into seconds; throws with the accepted forms otherwise. */
export function parseDurationSeconds(text: string, flag: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return positive(Number(trimmed), text, flag);
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw new InvalidInputError(
      `${flag} "${text}" is not a duration. Use e.g. 90s, 15m, 1h30m or a number of seconds.`,
    );
  }
  const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
  return positive(seconds, text, flag);
}

function positive(seconds: number, text: string, flag: string): number {
  if (!(seconds > 0)) throw new InvalidInputError(`${flag} must be longer than zero (got "${text}").`);
  return seconds;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
