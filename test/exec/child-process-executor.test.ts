import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { ChildProcessExecutor } from '../../src/exec/child-process-executor.js';
import { ExecError } from '../../src/exec/executor.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';

/** The rules and chain declarations of a save, without the timestamped comments. */
function body(save: string): string[] {
  return save.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

async function rejection(promise: Promise<unknown>): Promise<ExecError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ExecError);
    return err as ExecError;
  }
  throw new Error('expected the call to reject with an ExecError');
}

const EMPTY_FILTER = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

describe('ChildProcessExecutor options', () => {
  it.each(['', '-x', '.hidden', 'a/b', 'a b', 'a\nb', 'x'.repeat(65), '../etc'])(
    'rejects the netns name %j',
    (netns) => {
      expect(() => new ChildProcessExecutor({ netns })).toThrow(TypeError);
    },
  );

  it('accepts a strict netns name', () => {
    expect(new ChildProcessExecutor({ netns: 'ptest-1.a_B' }).netns).toBe('ptest-1.a_B');
    expect(new ChildProcessExecutor({ netns: 'x'.repeat(64) }).netns).toHaveLength(64);
  });

  it('has documented defaults', () => {
    const e = new ChildProcessExecutor();
    expect([e.netns, e.waitSeconds, e.timeoutMs]).toEqual([undefined, 10, 30_000]);
  });

  it.each([
    { waitSeconds: -1 },
    { waitSeconds: 1.5 },
    { timeoutMs: 0 },
    { maxOutputBytes: 0 },
    { binaries: { ipv4: { save: '' } } },
    { binaries: { ipv6: { restore: '--help' } } },
    { binaries: { ip: 'ip\n' } },
  ])('rejects %j with a TypeError', (options) => {
    expect(() => new ChildProcessExecutor(options)).toThrow(TypeError);
  });

  it('refuses restore text with a NUL byte before spawning anything', async () => {
    const e = new ChildProcessExecutor({ netns: 'ptest-never-created' });
    const err = await rejection(e.restore('ipv4', '*filter\n-A INPUT -j ACCEPT\0\nCOMMIT\n'));
    expect(err.kind).toBe('invalid_input');
    expect(err.argv).toEqual([]);
  });

  it('rejects an invalid per-call timeout', async () => {
    const e = new ChildProcessExecutor({ netns: 'ptest-never-created' });
    await expect(e.save('ipv4', { timeoutMs: -5 })).rejects.toThrow(TypeError);
  });
});

const FAMILIES: { family: Family; addr: string; addr2: string; cli: string; mask: string }[] = [
  {
    family: 'ipv4',
    addr: '192.0.2.7/32',
    addr2: '198.51.100.9/32',
    cli: 'iptables',
    mask: '255.255.255.255',
  },
  {
    family: 'ipv6',
    addr: '2001:db8::7/128',
    addr2: '2001:db8::9/128',
    cli: 'ip6tables',
    mask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  },
];

for (const { family, addr, addr2, cli, mask } of FAMILIES) {
  describeKernel(`ChildProcessExecutor (${family}, kernel)`, () => {
    const netns = useNetns();
    let exec: ChildProcessExecutor;
    beforeAll(() => {
      exec = new ChildProcessExecutor({ netns: netns().name, waitSeconds: 5, timeoutMs: 20_000 });
    });
    const reset = async (): Promise<void> => {
      await exec.restore(family, EMPTY_FILTER);
    };
    const ruleset = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':LOG_AND_DROP - [0:0]',
      '-A INPUT -i lo -j ACCEPT',
      `-A INPUT -p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask ${mask} --rsource`,
      `-A INPUT -s ${addr} -m comment --comment "ban for an hour" -j LOG_AND_DROP`,
      '-A LOG_AND_DROP -j LOG --log-prefix "portcullis: "',
      '-A LOG_AND_DROP -j DROP',
      'COMMIT',
    ];

    // Runs first, in a namespace nobody has touched yet.
    it('saves an empty namespace as no tables at all', async () => {
      expect(await exec.save(family)).toBe('');
      expect(body(await exec.save(family, { table: 'filter' }))).toEqual(body(EMPTY_FILTER));
    });

    it('round-trips restore then save', async () => {
      await exec.restore(family, `${ruleset.join('\n')}\n`);
      const saved = await exec.save(family);
      expect(body(saved)).toEqual(ruleset);
      // Feeding the save back changes nothing.
      await exec.restore(family, saved);
      expect(body(await exec.save(family))).toEqual(ruleset);
      expect(body(await exec.save(family, { table: 'filter' }))).toEqual(ruleset);
      expect(await exec.save(family, { table: 'nat' })).not.toContain('-A ');
    });

    it('--test checks the input and changes nothing', async () => {
      await reset();
      const before = body(await exec.save(family));
      await exec.restore(family, `*filter\n-A INPUT -s ${addr} -j DROP\nCOMMIT\n`, {
        noflush: true,
        test: true,
      });
      await exec.restore(family, `*filter\n:INPUT DROP [0:0]\nCOMMIT\n`, { test: true });
      expect(body(await exec.save(family))).toEqual(before);
      const err = await rejection(
        exec.restore(family, '*filter\n-A INPUT --bogus -j DROP\nCOMMIT\n', { noflush: true, test: true }),
      );
      expect(err.kind).toBe('invalid_input');
      expect(err.line).toBe(2);
    });

    it('--noflush keeps the rules the input does not mention', async () => {
      await reset();
      await exec.restore(family, `*filter\n-A INPUT -s ${addr} -j DROP\nCOMMIT\n`, { noflush: true });
      await exec.restore(family, `*filter\n-A INPUT -s ${addr2} -j ACCEPT\nCOMMIT\n`, { noflush: true });
      expect(body(await exec.save(family)).filter((l) => l.startsWith('-A'))).toEqual([
        `-A INPUT -s ${addr} -j DROP`,
        `-A INPUT -s ${addr2} -j ACCEPT`,
      ]);
      // Without --noflush the table is replaced.
      await exec.restore(family, `*filter\n-A INPUT -s ${addr2} -j ACCEPT\nCOMMIT\n`);
      expect(body(await exec.save(family)).filter((l) => l.startsWith('-A'))).toEqual([
        `-A INPUT -s ${addr2} -j ACCEPT`,
      ]);
    });

    it('restores and saves counters', async () => {
      await reset();
      await exec.restore(family, `*filter\n[5:100] -A INPUT -s ${addr} -j DROP\nCOMMIT\n`, {
        noflush: true,
        counters: true,
      });
      const saved = await exec.save(family, { counters: true });
      // Measured: ip6tables-restore v1.8.9 (nf_tables) drops rule counters (saves [0:0], even for
      // `-c 5 100`); iptables-restore keeps them.
      const rule = body(saved).find((l) => l.endsWith(`] -A INPUT -s ${addr} -j DROP`));
      expect(rule).toMatch(family === 'ipv4' ? /^\[5:100\] / : /^\[\d+:\d+\] /);
      expect(await exec.save(family)).not.toContain('[5:100]');
    });

    it('blames the bad line, applies nothing, and quotes it', async () => {
      await reset();
      const input = `*filter\n-A INPUT -s ${addr} -j DROP\n-A INPUT --bogus -j DROP\nCOMMIT\n`;
      const err = await rejection(exec.restore(family, input, { noflush: true }));
      expect(err.kind).toBe('invalid_input');
      expect(err.exitCode).toBe(2);
      expect(err.line).toBe(3);
      expect(err.lineText).toBe('-A INPUT --bogus -j DROP');
      expect(err.stderr).toContain('unknown option "--bogus"');
      expect(err.message).toContain('line 3');
      expect(err.argv).toEqual([
        'ip',
        'netns',
        'exec',
        netns().name,
        `${cli}-restore`,
        '-w',
        '5',
        '--noflush',
      ]);
      expect(body(await exec.save(family))).toEqual(body(EMPTY_FILTER));
    });

    it('reports the bad line even when iptables stops reading a large input early', async () => {
      await reset();
      const lines = ['*filter', '-A INPUT -s bogus..address -j DROP'];
      for (let i = 0; i < 50_000; i++) lines.push(`-A INPUT -s ${addr} -j ACCEPT`);
      lines.push('COMMIT', '');
      const err = await rejection(exec.restore(family, lines.join('\n'), { noflush: true }));
      expect(err.kind).toBe('invalid_input');
      expect(err.line).toBe(2);
    });

    it('deleting a missing rule is not_found, with its line', async () => {
      await reset();
      const input = `*filter\n-A INPUT -s ${addr2} -j ACCEPT\n-D INPUT -s ${addr} -j DROP\nCOMMIT\n`;
      const err = await rejection(exec.restore(family, input, { noflush: true }));
      expect(err.isNotFound()).toBe(true);
      expect(err.line).toBe(3);
      expect(err.lineText).toBe(`-D INPUT -s ${addr} -j DROP`);
      // All or nothing: the append on line 2 was not committed either.
      expect(body(await exec.save(family))).toEqual(body(EMPTY_FILTER));

      const byNumber = await rejection(
        exec.restore(family, '*filter\n-D INPUT 5\nCOMMIT\n', { noflush: true }),
      );
      expect(byNumber.isNotFound()).toBe(true);
      const noChain = await rejection(
        exec.restore(family, '*filter\n-F NOCHAIN\nCOMMIT\n', { noflush: true }),
      );
      expect(noChain.isNotFound()).toBe(true);
    });

    it('a jump to a missing chain is not_found; nf_tables blames the COMMIT line', async () => {
      await reset();
      const err = await rejection(
        exec.restore(family, '*filter\n-A INPUT -j NOCHAIN\nCOMMIT\n', { noflush: true }),
      );
      expect(err.isNotFound()).toBe(true);
      expect(err.line).toBe(3);
      expect(err.lineText).toBe('COMMIT');
    });

    it('creating an existing chain is already_exists', async () => {
      await reset();
      await exec.restore(family, '*filter\n-N PTEST_CHAIN\nCOMMIT\n', { noflush: true });
      const err = await rejection(
        exec.restore(family, '*filter\n-N PTEST_CHAIN\nCOMMIT\n', { noflush: true }),
      );
      expect(err.isAlreadyExists()).toBe(true);
      expect(err.line).toBe(2);
      expect(err.message).toContain('already exists');
    });

    it('info() reports the backend and version the binary prints', async () => {
      const info = await exec.info(family);
      const printed = (await netns().exec([cli, '--version'])).stdout;
      expect(info.version).toMatch(/^\d+\.\d+(\.\d+)?$/);
      expect(printed).toContain(`v${info.version} (${info.backend})`);
      expect(info.backend).toBe('nf_tables');
    });
  });
}

describeKernel('ChildProcessExecutor failures (kernel)', () => {
  const netns = useNetns();
  let dir: string;
  /** A stand-in restore program that ignores its input and sleeps for an unmistakable duration. */
  let slow: string;
  let marker: string;
  /** A wrapper that runs the real iptables-save as nobody, without CAP_NET_ADMIN. */
  let unprivileged: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ptest-exec-'));
    marker = `29.${randomBytes(3).readUIntBE(0, 3)}`;
    slow = join(dir, 'slow-restore');
    await writeFile(slow, `#!/bin/sh\nexec sleep ${marker}\n`);
    await chmod(slow, 0o755);
    unprivileged = join(dir, 'unprivileged-save');
    await writeFile(
      unprivileged,
      '#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups iptables-save "$@"\n',
    );
    await chmod(unprivileged, 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Whether a process running our marker sleep still exists. */
  async function sleeperAlive(): Promise<boolean> {
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.split('\0').includes(marker)) return true;
    }
    return false;
  }

  it('kills the process on timeout', async () => {
    const exec = new ChildProcessExecutor({
      netns: netns().name,
      timeoutMs: 30_000,
      binaries: { ipv4: { restore: slow } },
    });
    const started = Date.now();
    const err = await rejection(exec.restore('ipv4', EMPTY_FILTER, { timeoutMs: 300 }));
    expect(err.isTimeout()).toBe(true);
    expect(err.exitCode).toBeNull();
    expect(err.message).toContain('300 ms');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await sleeperAlive()).toBe(false);
  });

  it('kills the process when the signal aborts', async () => {
    const exec = new ChildProcessExecutor({ netns: netns().name, binaries: { ipv4: { restore: slow } } });
    const controller = new AbortController();
    const reason = new Error('client went away');
    setTimeout(() => controller.abort(reason), 200);
    const started = Date.now();
    const err = await rejection(exec.restore('ipv4', EMPTY_FILTER, { signal: controller.signal }));
    expect(err.isAborted()).toBe(true);
    expect(err.cause).toBe(reason);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await sleeperAlive()).toBe(false);
  });

  it('does not start at all when the signal is already aborted', async () => {
    const exec = new ChildProcessExecutor({ netns: netns().name });
    const err = await rejection(
      exec.restore('ipv4', `*filter\n-A INPUT -s 192.0.2.1/32 -j DROP\nCOMMIT\n`, {
        signal: AbortSignal.abort(),
      }),
    );
    expect(err.isAborted()).toBe(true);
    expect(await exec.save('ipv4')).not.toContain('192.0.2.1');
  });

  it('names a network namespace that does not exist', async () => {
    const missing = `ptest-missing-${process.pid}-${randomBytes(4).toString('hex')}`;
    const exec = new ChildProcessExecutor({ netns: missing });
    const err = await rejection(exec.save('ipv4'));
    expect(err.kind).toBe('failed');
    expect(err.isNotFound()).toBe(false);
    expect(err.message).toContain(`"${missing}" does not exist`);
    expect(err.stderr).toContain('Cannot open network namespace');
  });

  it('reports a missing iptables binary inside the namespace as binary_missing', async () => {
    const exec = new ChildProcessExecutor({
      netns: netns().name,
      binaries: {
        ipv4: { save: 'portcullis-no-such-iptables-save' },
        ipv6: { cli: '/nonexistent/ip6tables' },
      },
    });
    const err = await rejection(exec.save('ipv4'));
    expect(err.isBinaryMissing()).toBe(true);
    expect(err.message).toContain('install the Debian package iptables');
    expect((await rejection(exec.info('ipv6'))).isBinaryMissing()).toBe(true);
  });

  it('reports a missing ip binary as binary_missing', async () => {
    const exec = new ChildProcessExecutor({ netns: netns().name, binaries: { ip: '/nonexistent/ip' } });
    const err = await rejection(exec.save('ipv4'));
    expect(err.isBinaryMissing()).toBe(true);
    expect(err.message).toContain('iproute2');
  });

  it('reports a missing privilege as permission_denied', async () => {
    const exec = new ChildProcessExecutor({
      netns: netns().name,
      binaries: { ipv4: { save: unprivileged } },
    });
    const err = await rejection(exec.save('ipv4'));
    expect(err.isPermissionDenied()).toBe(true);
    expect(err.message).toContain('run as root');
  });

  it('kills a save whose output exceeds maxOutputBytes', async () => {
    const exec = new ChildProcessExecutor({ netns: netns().name, maxOutputBytes: 16 });
    await exec.restore('ipv4', EMPTY_FILTER);
    const err = await rejection(exec.save('ipv4'));
    expect(err.kind).toBe('failed');
    expect(err.message).toContain('maxOutputBytes');
  });
});

describeKernel('ChildProcessExecutor reports the process id of a restore', () => {
  const netns = useNetns();
  it('calls onSpawn with the pid it returns, and returns no pid for --test', async () => {
    const exec = new ChildProcessExecutor({ netns: netns().name });
    const seen: number[] = [];
    const text = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n';
    const result = await exec.restore('ipv4', text, { onSpawn: (pid) => seen.push(pid) });
    expect(result.pid).toBeGreaterThan(0);
    expect(seen).toEqual([result.pid]);
    expect((await exec.restore('ipv4', text, { test: true })).pid).toBeUndefined();
  });
});
