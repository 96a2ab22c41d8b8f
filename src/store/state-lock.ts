/**
 * One service per state directory. Two services managing the same directory would undo each
 * other's journal entries, overwrite each other's idempotency keys and rule files; the second
 * one refuses to start, with one sentence naming the first one's pid.
 *
 * The lock is an abstract Unix socket named after the directory's real path: binding it is
 * atomic, and the kernel releases it the moment its process dies, even by kill -9, so there is
 * never a stale lock to clean up (a pid file can name a pid that was reused). The holder
 * answers every connection with its pid, which is how the second service learns it; the pid
 * is also written to `portcullis.pid` in the directory, for people. Abstract sockets belong to
 * a network namespace: the service always runs in the host's (it manages another one through
 * `ip netns exec`), so all its instances meet there.
 */
import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { ensureDir, removeDurable, writeFileAtomic } from './durable.js';

export class StateDirLockedError extends Error {
  override readonly name = 'StateDirLockedError';
  constructor(
    readonly dir: string,
    readonly pid: number | undefined,
  ) {
    super(
      `another Portcullis${pid === undefined ? '' : ` (pid ${pid})`} manages the state directory ${dir}: stop it, or give this one another --state-dir.`,
    );
  }
}

export interface StateDirLock {
  readonly dir: string;
  release(): Promise<void>;
}

function lockName(real: string): string {
  return `\0portcullis-state-${createHash('sha256').update(real).digest('hex').slice(0, 40)}`;
}

/** The pid the holder of `name` answers with, if it answers. */
function holderPid(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const c = connect(name);
    const done = (pid: number | undefined) => {
      c.destroy();
      resolve(pid);
    };
    c.setTimeout(2000, () => done(undefined));
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      text += d;
      if (text.length > 32) done(undefined);
    });
    c.once('end', () => {
      const n = Number(text.trim());
      done(Number.isSafeInteger(n) && n > 0 ? n : undefined);
    });
    c.once('error', () => done(undefined));
  });
}

/** Takes the lock of `dir` (created 0700 when missing), or throws {@link StateDirLockedError}. */
export async function lockStateDir(dir: string): Promise<StateDirLock> {
  await ensureDir(dir);
  const real = await realpath(dir);
  const name = lockName(real);
  const server: Server = createServer((socket) => {
    socket.end(`${process.pid}\n`);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', async (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new StateDirLockedError(dir, await holderPid(name)));
      else reject(err);
    });
    server.listen(name, () => resolve());
  });
  server.unref();
  const pidFile = join(dir, 'portcullis.pid');
  await writeFileAtomic(pidFile, `${process.pid}\n`, 0o644).catch(() => undefined);
  let released = false;
  return {
    dir,
    release: async () => {
      if (released) return;
      released = true;
      await removeDurable(pidFile).catch(() => undefined);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
