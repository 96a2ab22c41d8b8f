/**
 * deploy/portcullis.service is checked the way systemd itself reads it: `systemd-analyze
 * verify` must print nothing about the unit (an unknown key, a value it cannot parse, a
 * missing program: systemd would ignore or refuse it at boot), `systemd-analyze security`
 * must rate it at most "OK", and the hardening the issue asks for must be there, exactly:
 * capabilities limited to CAP_NET_ADMIN and CAP_NET_RAW, a read-only system with the rule
 * files, state, logs and socket writable, started before the network.
 *
 * Without systemd-analyze (Debian package systemd) the suite is skipped with the reason; in CI
 * (CI=true or PORTCULLIS_REQUIRE_KERNEL=1) it fails instead, like the kernel tests.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kernelRequired } from '../helpers/kernel.js';

const UNIT = join(import.meta.dirname, '..', '..', 'deploy', 'portcullis.service');
const available = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
const reason = 'systemd-analyze is not installed (Debian package systemd)';

const tmp = mkdtempSync(join(tmpdir(), 'pcl-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The unit as systemd-analyze reads it: under its own name, in a folder of its own. */
function unitCopy(text?: string): string {
  const dir = mkdtempSync(join(tmp, 'u-'));
  const path = join(dir, 'portcullis.service');
  if (text === undefined) copyFileSync(UNIT, path);
  else writeFileSync(path, text);
  return path;
}

/** Lines of `systemd-analyze verify` about the unit file itself. */
function verify(path: string): string[] {
  const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8', timeout: 60_000 });
  return `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && (l.includes(path) || /portcullis\.service/.test(l)));
}

/** `key=value` lines of one section. */
function directives(section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of readFileSync(UNIT, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      current = s[1] as string;
      continue;
    }
    if (current !== section) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const suite = available ? describe : kernelRequired ? describe : describe.skip;
if (!available && !kernelRequired)
  console.warn(`[systemd] skipping deploy/portcullis.service checks: ${reason}`);

suite('deploy/portcullis.service', () => {
  it.runIf(!available)('needs systemd-analyze', () => {
    throw new Error(`the unit checks are required in CI but cannot run: ${reason}`);
  });

  it.runIf(available)('systemd-analyze verify has nothing to say about it', () => {
    // ExecStart names /usr/bin/node (Debian's nodejs); where node lives elsewhere, check the
    // unit with that path instead, so that the check is about the unit, not this machine.
    let text = readFileSync(UNIT, 'utf8');
    if (!existsSync('/usr/bin/node')) text = text.replaceAll('/usr/bin/node', process.execPath);
    expect(verify(unitCopy(text))).toEqual([]);
  });

  it.runIf(available)('the check can fail: a misspelt key or a bad value is reported', () => {
    const bad = readFileSync(UNIT, 'utf8')
      .replace('ProtectSystem=strict', 'ProtectSystem=stricter')
      .replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes');
    const lines = verify(unitCopy(bad));
    expect(lines.some((l) => /protect system/i.test(l))).toBe(true);
    expect(lines.some((l) => /Unknown key.*NoNewPrivilege/.test(l))).toBe(true);
  });

  it.runIf(available)('systemd-analyze security rates its exposure OK or better (at most 3.0)', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', unitCopy()], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const m = /Overall exposure level for portcullis\.service: (\d+(?:\.\d+)?)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(Number(m?.[1])).toBeLessThanOrEqual(3.0);
  });

  it('has the hardening and ordering the issue asks for', () => {
    const unit = directives('Unit');
    const svc = directives('Service');
    expect(unit.get('Before')?.join(' ')).toMatch(/\bnetwork-pre\.target\b/);
    expect(unit.get('Wants')?.join(' ')).toMatch(/\bnetwork-pre\.target\b/);
    expect(unit.get('DefaultDependencies')).toEqual(['no']);
    const caps = (k: string) => (svc.get(k)?.join(' ') ?? '').split(/\s+/).sort();
    expect(caps('CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(caps('AmbientCapabilities')).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(svc.get('ProtectSystem')).toEqual(['strict']);
    expect(svc.get('ReadWritePaths')?.join(' ')).toContain('/etc/iptables');
    expect(svc.get('StateDirectory')).toEqual(['portcullis']);
    expect(svc.get('RuntimeDirectory')).toEqual(['portcullis']);
    expect(svc.get('NoNewPrivileges')).toEqual(['yes']);
    expect(svc.get('PrivateTmp')).toEqual(['yes']);
    expect(svc.get('Restart')).toEqual(['on-failure']);
    expect(Number(svc.get('LimitNOFILE')?.[0])).toBeGreaterThanOrEqual(2 * 1000 + 128);
    expect(svc.get('ExecStart')?.[0]).toMatch(
      /^\/usr\/bin\/node (--\S+ )*\/opt\/portcullis\/dist\/main\.js /,
    );
    // Node's flags are those npm start gives (one tuning, two ways to start).
    const flags = (line: string, main: string) =>
      line.slice(line.indexOf('node ') + 5, line.indexOf(main)).trim();
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));
    expect(flags(svc.get('ExecStart')?.[0] ?? '', '/opt/portcullis/dist/main.js')).toBe(
      flags(pkg.scripts.start, 'dist/main.js'),
    );
    expect(flags(pkg.scripts.start, 'dist/main.js')).not.toBe('');
    expect(svc.get('ExecReload')?.[0]).toContain('-HUP');
  });
});
