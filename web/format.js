// Numbers for people: sizes, rates and durations in the progress text and the panels.

/** bytes formats a byte count with SI units ("6.5 MB", "10.24 GB"), as download sizes are quoted. */
export function bytes(n) {
  if (!Number.isFinite(n)) return '? B';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} ${units[i]}`;
}

/** rate formats bytes per second. */
export function rate(bytesPerSecond) {
  return `${bytes(bytesPerSecond)}/s`;
}

/** duration formats seconds as "45 s", "3 min", "1 h 20 min". */
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** tokens formats a token count ("1 token", "42 tokens"). */
export function tokens(n) {
  return `${n} ${n === 1 ? 'token' : 'tokens'}`;
}

/** tokensPerSecond formats a token rate from a count and milliseconds ("12.3 tokens/s"). */
export function tokensPerSecond(tokens, ms) {
  if (!(ms > 0) || !(tokens > 0)) return '–';
  return `${((tokens * 1000) / ms).toFixed(1)} tokens/s`;
}

/** milliseconds formats a duration in ms ("83 ms", "1.2 s"). */
export function milliseconds(ms) {
  if (!Number.isFinite(ms)) return '–';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
