// Starting the collector's worker threads: the built entry beside the
// running bundle in dist/ (build.mjs builds each), or, when the collector
// runs as TypeScript under tsx (tests), the source through tsx's loader,
// registered in the new thread first (a thread does not inherit the loader
// that `--import tsx` registered in this one).

import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `caller` is the caller's import.meta.url; `source` the entry relative to it; `bundle` the built file's name. */
export function startThread(caller: string, source: string, bundle: string, options: WorkerOptions): Worker {
  if (!caller.endsWith('.ts')) return new Worker(new URL(`./${bundle}`, caller), options);
  const entry = JSON.stringify(new URL(source, caller).href);
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${entry}); });`, { ...options, eval: true });
}
