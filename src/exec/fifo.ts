/**
 * A real pipe for a child's output, where Node offers only a Unix socket pair.
 *
 * Why it matters: `nft monitor` flushes after every fragment it prints (about 16 writes of a
 * few bytes per rule, measured with strace), and a Unix stream socket charges each write a
 * whole socket buffer (hundreds of bytes of accounting), so Node's stdio `'pipe'` holds only a
 * dozen rules' worth of output before the monitor blocks in its write. Then the monitor moves
 * only as fast as the service's event loop comes round to read it: under a steady stream of
 * requests (~100 ms per loop turn) it fell seconds behind, the service's own commits arrived
 * after their wait had given up and were taken for another process's change, and each of
 * those re-read the whole kernel. A pipe packs small writes into its pages: 64 KiB of
 * output, some 500 rules, fit before the writer waits.
 *
 * Node has no pipe(2), so the pipe is a FIFO made by `mkfifo` (coreutils; argv only) in a
 * private 0700 directory and removed as soon as both ends are open: nothing else can open it.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Fifo {
  /** Non-blocking read end, for `new net.Socket({ fd })`. */
  readonly readFd: number;
  /** Blocking write end, for the child's stdio; close it in this process once the child has it. */
  readonly writeFd: number;
}

/**
 * Opens a pipe; undefined when it cannot be made here (no mkfifo, no writable temp dir).
 * Synchronous (one short `mkfifo`, ~2 ms), so that a caller can spawn its child right away.
 */
export function openFifo(mkfifo = 'mkfifo'): Fifo | undefined {
  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-pipe-'));
  } catch {
    return undefined;
  }
  const path = join(dir, 'out');
  try {
    const made = spawnSync(mkfifo, ['-m', '0600', path], { shell: false, stdio: 'ignore', timeout: 10_000 });
    if (made.status !== 0) return undefined;
    // The read end first, without blocking; then the write end opens at once (a reader exists).
    const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      return { readFd, writeFd: openSync(path, constants.O_WRONLY) };
    } catch {
      closeSync(readFd);
      return undefined;
    }
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
