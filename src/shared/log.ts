// One small logger for both programs: a line per message, level and area
// first, so `grep collector` or `grep ERROR` work on the output.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  child(area: string): Logger;
}

export type LogSink = (level: LogLevel, line: string) => void;

const consoleSink: LogSink = (level, line) => {
  if (level === 'error' || level === 'warn') console.error(line);
  else console.log(line);
};

export function createLogger(area: string, minimum: LogLevel = 'info', sink: LogSink = consoleSink): Logger {
  const write = (level: LogLevel, message: string) => {
    if (ORDER[level] < ORDER[minimum]) return;
    sink(level, `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} [${area}] ${message}`);
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    child: (sub) => createLogger(`${area}.${sub}`, minimum, sink),
  };
}

/** Log a recurring problem at most once per key per interval, saying how often it happened meanwhile. */
export function createRateLimitedLog(log: (message: string) => void, intervalMs = 60_000, now: () => number = Date.now) {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (key: string, message: string): void => {
    const seen = last.get(key);
    const t = now();
    if (seen && t - seen.at < intervalMs) {
      seen.suppressed += 1;
      return;
    }
    const extra = seen && seen.suppressed > 0 ? ` (${seen.suppressed} more since the last report)` : '';
    last.set(key, { at: t, suppressed: 0 });
    log(`${message}${extra}`);
  };
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
