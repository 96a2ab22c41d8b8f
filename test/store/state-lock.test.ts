/**
 * One service per state directory (src/store/state-lock.ts): a second lock of the same
 * directory (however it is spelt) fails with one sentence naming the holder's pid; the lock
 * goes away with its process, even after kill -9, so no stale lock ever blocks a restart.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockStateDir, StateDirLockedError } from '../../src/store/state-lock.js';

const tmp = mkdtempSync(join(tmpdir(), 'pcl-lock-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const ROOT = join(import.meta.dirname, '..', '..');

describe('the state directory lock', () => {
  it('refuses a second holder, naming the first one pid, also through another spelling of the path', async () => {
    const dir = join(tmp, 'a');
    const lock = await lockStateDir(dir);
    expect(readFileSync(join(dir, 'portcullis.pid'), 'utf8')).toBe(`${process.pid}\n`);
    symlinkSync(dir, join(tmp, 'a-link'));
    for (const spelling of [dir, `${dir}/`, join(tmp, 'a-link')]) {
      const err = await lockStateDir(spelling).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateDirLockedError);
      expect((err as Error).message).toBe(
        `another Portcullis (pid ${process.pid}) manages the state directory ${spelling}: stop it, or give this one another --state-dir.`,
      );
    }
    await lock.release();
    const again = await lockStateDir(dir);
    await again.release();
  });

  it('different directories do not share a lock', async () => {
    mkdirSync(join(tmp, 'b1'));
    const a = await lockStateDir(join(tmp, 'b1'));
    const b = await lockStateDir(join(tmp, 'b2'));
    await Promise.all([a.release(), b.release()]);
  });

  it('is free again as soon as its holder is killed with SIGKILL', async () => {
    const dir = join(tmp, 'c');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import('${join(ROOT, 'src/store/state-lock.ts')}').then(async (m) => { await m.lockStateDir(${JSON.stringify(dir)}); process.stdout.write('locked\\n'); setInterval(() => {}, 1000); })`,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout?.setEncoding('utf8').on('data', (d: string) => d.includes('locked') && resolve());
      child.once('exit', (code) => reject(new Error(`the child exited with ${code}`)));
    });
    const err = await lockStateDir(dir).catch((e: unknown) => e);
    expect((err as StateDirLockedError).pid).toBe(child.pid);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const lock = await lockStateDir(dir);
    await lock.release();
  });
});
