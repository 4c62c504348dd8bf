// What a process costs, read from /proc (Linux), for the benchmarks: CPU
// seconds (utime + stime of every thread) and resident memory. Every reader
// returns undefined when the file cannot be read (no such process, another
// PID namespace, not Linux) so that a benchmark can say so and go on.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

const TICKS_PER_SECOND = clockTicks();

/** CPU seconds the process has used so far, all its threads, user and system. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** The process's command name (/proc/<pid>/comm), e.g. redis-server. */
export function processName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Resident memory in MiB: now (VmRSS) and the most it has been (VmHWM). */
export function memoryMiB(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine has been busy (all cores; /proc/stat less idle and iowait). */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [, ...values] = line.trim().split(/\s+/);
    const ticks = values.map(Number);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - (ticks[3] ?? 0) - (ticks[4] ?? 0)) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** PIDs whose command name is exactly `name` (pgrep -x); empty when none or no pgrep. */
export function pidsNamed(name: string): number[] {
  try {
    return execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Where a process's resident memory is, in MiB, from /proc/<pid>/smaps. */
export interface MemorySplit {
  rss: number;
  /** Anonymous 256 KiB mappings: V8's heap pages, all isolates together. */
  v8: number;
  /** The node executable's own pages (file-backed, shared with other node processes). */
  binary: number;
  /** malloc's heap ([heap] and other anonymous mappings): SQLite's page caches, buffers, native code's data. */
  malloc: number;
  /** Everything else: shared libraries, stacks, other files. */
  other: number;
}

const V8_PAGE_KIB = 256;

export function memorySplit(pid: number): MemorySplit | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const split: MemorySplit = { rss: 0, v8: 0, binary: 0, malloc: 0, other: 0 };
  let kind: keyof MemorySplit = 'other';
  for (const line of text.split('\n')) {
    const mapping = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const sizeKiB = (Number.parseInt(mapping[2]!, 16) - Number.parseInt(mapping[1]!, 16)) / 1024;
      const name = mapping[3]!.trim();
      if (name === '') kind = sizeKiB === V8_PAGE_KIB ? 'v8' : 'malloc';
      else if (name === '[heap]') kind = 'malloc';
      else if (name === process.execPath || name.endsWith('/bin/node')) kind = 'binary';
      else kind = 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      const mib = Number(rss[1]) / 1024;
      split[kind] += mib;
      split.rss += mib;
    }
  }
  return split;
}
