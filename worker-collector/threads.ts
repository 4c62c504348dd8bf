// Where a worker thread's entry is: beside the running bundle in dist/
// (build.mjs builds each entry), or the TypeScript source when the collector
// runs under tsx (tests), whose loader the thread inherits with execArgv.

/** `caller` is the caller's import.meta.url; `source` the entry relative to it; `bundle` the built file's name. */
export function threadEntry(caller: string, source: string, bundle: string): URL {
  return caller.endsWith('.ts') ? new URL(source, caller) : new URL(`./${bundle}`, caller);
}
