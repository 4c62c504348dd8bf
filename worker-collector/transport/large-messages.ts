// Memory after a large broker message. A 14 MB message leaves some 60 MB of
// garbage behind (the socket's chunks, the reassembled Buffer, the message as
// text, the envelope's body, the decoded body and its values), most of it in
// V8's large-object space and in Buffers outside the heap. V8 collects it
// only when the program allocates again, and a collector that goes quiet
// after the message allocates little: in bench/big-message.ts RSS stayed up
// to 180 MiB above its baseline for 20 s and more. When the runtime exposes
// the collector (`node --expose-gc`, as the npm scripts and the container
// start it), one full collection a second after large messages gives the
// memory back within 2 s; otherwise V8's memory reducer does, eventually.
// (What glibc keeps of the freed socket chunks is the container's
// MALLOC_MMAP_THRESHOLD_, see the Dockerfile.)

/** Messages from this size on are worth a collection afterwards (bytes). */
export const LARGE_MESSAGE_BYTES = 1024 * 1024;
const COLLECT_AFTER_MS = 1_000;

type Collect = () => void;

export class LargeMessageReclaimer {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly collect: Collect | undefined = exposedGc()) {}

  /** Note a message of `bytes` bytes (read, refused or parsed); schedules one collection after large ones. */
  noteMessage(bytes: number): void {
    if (bytes < LARGE_MESSAGE_BYTES || !this.collect || this.timer) return;
    // One collection for a whole burst: the first large message schedules it,
    // later ones within the second ride along.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collect?.();
    }, COLLECT_AFTER_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function exposedGc(): Collect | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? () => (gc as () => void)() : undefined;
}
