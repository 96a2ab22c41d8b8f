/**
 * `npm start` runs the compiled daemon (`node dist/main.js`, building dist/ first when it is
 * stale) as npm's direct child (`exec`), so signals reach it: SIGTERM to npm (which forwards
 * it) or to node itself stops the service gracefully, "stopped" is logged and the ports are
 * free again within a few seconds. (With `tsx src/main.ts` a SIGTERM to npm left the service
 * running and holding its ports for over 10 s.) Managing a throwaway network namespace.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';

const ROOT = join(import.meta.dirname, '..', '..');
const STOP_WITHIN_MS = 5000;

function canListen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => res(true)));
  });
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('PORTCULLIS_') && !k.startsWith('npm_')) env[k] = v;
  return env;
}

const started: ChildProcess[] = [];
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
afterEach(async () => {
  for (const c of started.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    // npm's child is the daemon: a test that failed before stopping it must not leave it
    // running (SIGKILL to npm alone orphaned it, with its nft monitor). SIGTERM first, so that
    // it ends its own children; SIGKILL whatever is left after 10 s.
    const kids = spawnSync('pgrep', ['-P', String(c.pid)], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter((k) => /^\d+$/.test(k))
      .map(Number);
    for (const pid of kids) if (alive(pid)) process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && kids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    for (const pid of kids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}, 30_000);

describeKernel('npm start: the compiled daemon, stopped by SIGTERM', () => {
  const ns = useNetns('pnpm');
  const state = mkdtempSync(join(tmpdir(), 'pcl-npm-start-'));
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  beforeAll(() => {
    // What prestart does, done up front so that the start below is not a build.
    const r = spawnSync(process.execPath, ['scripts/build-if-needed.mjs'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  }, 180_000);

  it('package.json starts node dist/main.js directly and builds first when needed', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    // Node's own flags may come first (a V8 tuning; the systemd unit test checks they match).
    expect(pkg.scripts.start).toMatch(/^exec node (--\S+ )*dist\/main\.js$/);
    expect(pkg.scripts.prestart).toBe('node scripts/build-if-needed.mjs');
    expect(pkg.scripts.build).toBeDefined();
  });

  for (const target of ['npm', 'node'] as const) {
    it(`SIGTERM to ${target}: "stopped" is logged and the ports are released within ${STOP_WITHIN_MS} ms`, async () => {
      const rest = await freePort();
      const grpc = await freePort();
      const child = spawn(
        'npm',
        [
          'start',
          '--silent',
          '--',
          '--netns',
          ns().name,
          '--state-dir',
          join(state, target),
          '--rest-port',
          String(rest),
          '--grpc-port',
          String(grpc),
          '--socket',
          '',
        ],
        { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      started.push(child);
      let log = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        log += d;
      });
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        log += d;
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      // Ready: /readyz answers 200.
      const deadline = Date.now() + 120_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`npm start exited early:\n${log}`);
        if (Date.now() > deadline) throw new Error(`not ready within 120 s:\n${log}`);
        const ok = await fetch(`http://127.0.0.1:${rest}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // npm's child is node itself (no shell in between, no tsx).
      const kids = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n');
      expect(kids).toHaveLength(1);
      const nodePid = Number(kids[0]);
      expect(
        readFileSync(`/proc/${nodePid}/cmdline`, 'utf8')
          .split('\0')
          .slice(1)
          .find((a) => !a.startsWith('--')),
      ).toBe('dist/main.js');

      const t0 = Date.now();
      process.kill(target === 'npm' ? (child.pid as number) : nodePid, 'SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<'late'>((r) => setTimeout(() => r('late'), STOP_WITHIN_MS + 5000)),
      ]);
      const took = Date.now() - t0;
      expect(code, log).not.toBe('late');
      expect(took, log).toBeLessThan(STOP_WITHIN_MS);
      expect(log).toMatch(/"msg":"stopped"|msg=stopped/);
      expect(spawnSync('ps', ['-p', String(nodePid)]).status).not.toBe(0);
      expect(await canListen(rest)).toBe(true);
      expect(await canListen(grpc)).toBe(true);
    }, 180_000);
  }
});
