/**
 * The portcullis command against the real kernel, as issue 14 asks:
 *
 * 1. Parity: the same command lines (parity-steps.ts: every iptables verb, both seed
 *    articles, nat, ipv6, save and restore) run once through iptables / ip6tables /
 *    iptables-save / iptables-restore in one throwaway network namespace and once through
 *    portcullis against a Portcullis service managing another. After every step both
 *    namespaces' iptables-save (both families) must be equal; every step must end with the
 *    same exit status; and the printed text of -L, -S and save must be the same byte for byte.
 * 2. Every error path: exit status and the one line on stderr (unknown chain, bad option,
 *    service down, wrong or missing token, read-only token, ...).
 * 3. The commands iptables does not have (diff, watch, trace, lint, status) and the bin
 *    script as `npx portcullis` runs it.
 *
 * Namespaces are `pcl-cli-<pid>-<random>`, deleted in afterAll also when a test fails; the
 * service listens on a Unix socket in a temporary directory and on 127.0.0.1 only.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, describeKernel, type Netns } from '../helpers/kernel.js';
import { type CliService, startCliService } from './cli-service.js';
import { EXTRA, HARDENED, STEPS, type Step } from './parity-steps.js';
import { runCli } from './run-cli.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** The iptables command line a step stands for, with its stdin. */
function reference(step: Step): string[] {
  const argv = [...step.argv];
  const six = argv[0] === '-6';
  if (six) argv.shift();
  const prefix = six ? 'ip6tables' : 'iptables';
  if (argv[0] === 'save') return [`${prefix}-save`, ...argv.slice(1)];
  if (argv[0] === 'restore') return [`${prefix}-restore`, '-w', ...argv.slice(1)];
  return [prefix, '-w', ...argv];
}

/**
 * iptables-save text compared as rulesets: comment lines and counters dropped, tables in
 * name order, and a table that holds nothing but empty ACCEPT built-in chains dropped (it is
 * the same ruleset as no table: whether nf_tables created it yet is not the CLI's doing).
 */
function normalizeSave(text: string): string {
  const blocks: string[][] = [];
  let block: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\[\d+:\d+\]/g, '[0:0]');
    if (line === '' || line.startsWith('#')) continue;
    block.push(line);
    if (line === 'COMMIT') {
      blocks.push(block);
      block = [];
    }
  }
  const trivial = (b: string[]) =>
    b.every((l) => l.startsWith('*') || l === 'COMMIT' || / ACCEPT \[0:0\]$/.test(l));
  return blocks
    .filter((b) => !trivial(b))
    .sort((a, b) => ((a[0] ?? '') < (b[0] ?? '') ? -1 : 1))
    .map((b) => b.join('\n'))
    .join('\n');
}

describeKernel('portcullis and iptables, command line by command line', () => {
  let svc: CliService | undefined;
  let ref: Netns | undefined;
  const env = () => ({ PORTCULLIS_SOCKET: svc?.socket ?? '' });

  beforeAll(async () => {
    ref = await createNetns('pcl-cli');
    svc = await startCliService();
  });
  afterAll(async () => {
    try {
      await svc?.close();
    } finally {
      await ref?.destroy();
    }
  });

  async function states(): Promise<{ ours: string; theirs: string }> {
    if (!svc || !ref) throw new Error('no sandbox');
    const ns = ref;
    const theirs = await Promise.all(
      ['iptables-save', 'ip6tables-save'].map(async (bin) => normalizeSave((await ns.exec([bin])).stdout)),
    );
    const k = svc.kernel;
    const ours = await Promise.all(
      (['ipv4', 'ipv6'] as const).map(async (f) => normalizeSave(await k.save(f))),
    );
    return { ours: ours.join('\n---\n'), theirs: theirs.join('\n---\n') };
  }

  it(`runs ${STEPS.length} command lines with the same outcome as iptables`, async () => {
    expect(STEPS.length).toBeGreaterThanOrEqual(40);
    if (!ref) throw new Error('no reference namespace');
    const compared = { outputs: 0, failures: 0, rulesets: 0 };
    for (const [i, step] of STEPS.entries()) {
      const what = `step ${i + 1}: portcullis ${step.argv.join(' ')}`;
      const theirs = await ref.exec(reference(step), step.stdin);
      const ours = await runCli(step.argv, {
        env: env(),
        ...(step.stdin === undefined ? {} : { stdin: step.stdin }),
      });
      expect(
        ours.code,
        `${what}: exit status (iptables said: ${theirs.stderr.trim()}; we said: ${ours.stderr.trim()})`,
      ).toBe(theirs.code);
      if (theirs.code !== 0) {
        compared.failures++;
        expect(ours.stderr, what).toMatch(/^portcullis: [^\n]+\n$/);
      }
      if (step.output) {
        compared.outputs++;
        expect(theirs.stdout, `${what}: iptables printed something`).not.toBe('');
        const save = step.argv.includes('save');
        expect(save ? normalizeSave(ours.stdout) : ours.stdout, `${what}: output`).toBe(
          save ? normalizeSave(theirs.stdout) : theirs.stdout,
        );
      }
      const { ours: mine, theirs: kernel } = await states();
      expect(mine, `${what}: iptables-save of both namespaces`).toBe(kernel);
      if (kernel.includes('-A ')) compared.rulesets++;
    }
    // The comparison is not vacuous: most steps compared rulesets that hold rules.
    expect(compared.rulesets).toBeGreaterThan(STEPS.length / 2);
    console.info(
      `[cli parity] ${STEPS.length} command lines, ${compared.outputs} outputs compared byte for byte, ${compared.failures} failures with the same exit status, ${compared.rulesets} non-empty rulesets compared`,
    );
  });

  it('diff shows what restore would change, and nothing once it is applied', async () => {
    const restored = await runCli(['restore'], { env: env(), stdin: HARDENED });
    expect(restored).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await runCli(['diff'], { env: env(), stdin: HARDENED })).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
    const changed = HARDENED.replace('--dport 22 -j ACCEPT', '--dport 2222 -j ACCEPT');
    const d = await runCli(['diff'], { env: env(), stdin: changed });
    expect(d.code).toBe(0);
    expect(d.stdout).toBe(
      '-D INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-I INPUT 2 -p tcp -m tcp --dport 2222 -j ACCEPT\n',
    );
    const plus = await runCli(['diff', '--noflush'], { env: env(), stdin: EXTRA });
    expect(plus.stdout).toMatch(/-N EXTRA/);
    // Nothing was applied by either diff.
    expect(await runCli(['diff'], { env: env(), stdin: HARDENED })).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
  });

  it('watch prints one line per change until interrupted', async () => {
    const stop = new AbortController();
    let seen = '';
    const watching = runCli(['watch'], {
      env: env(),
      signal: stop.signal,
      onStdout: (t) => {
        seen += t;
      },
    });
    // A change made before the stream is open is not shown: try again (bounded) until one is.
    let n = 0;
    for (; n < 20 && !/-N WATCHED/.test(seen); n++) {
      expect((await runCli(['-N', `WATCHED${n}`], { env: env() })).code).toBe(0);
      const deadline = Date.now() + 500;
      while (!seen.includes(`-N WATCHED${n}`) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
    }
    stop.abort();
    const done = await watching;
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^#\d+ service \S+ -N WATCHED\d+$/m);
    for (let i = 0; i < n; i++) expect((await runCli(['-X', `WATCHED${i}`], { env: env() })).code).toBe(0);
  });

  it('trace, lint and status answer through the simulator and the service', async () => {
    const t = await runCli(['trace', '-p', 'tcp', '-s', '198.51.100.7', '--dport', '22', '--state', 'NEW'], {
      env: env(),
    });
    expect(t.stderr).toBe('');
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/ACCEPT/);
    const tj = await runCli(['trace', '--json', '-p', 'tcp', '--dport', '22', '--state', 'NEW'], {
      env: env(),
    });
    expect(JSON.parse(tj.stdout)).toMatchObject({ managed: { family: 'ipv4', hook: 'INPUT' } });
    const l = await runCli(['lint', '--json'], { env: env() });
    expect(l.code === 0 || l.code === 1).toBe(true);
    expect(JSON.parse(l.stdout)).toHaveProperty('findings');
    const s = await runCli(['status'], { env: env() });
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/revision/);
  });

  it('runs as `npx portcullis` through bin/portcullis.js', async () => {
    const inProcess = await runCli(['-S'], { env: env() });
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'portcullis.js'), '-S'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORTCULLIS_SOCKET: svc?.socket ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toBe(inProcess.stdout);
  });

  describe('every error path: exit status and one line on stderr', () => {
    /** A loopback TCP port with nothing listening (bound, then closed). */
    async function closedPort(): Promise<number> {
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const address = server.address();
      await new Promise<void>((r) => server.close(() => r()));
      if (address === null || typeof address === 'string') throw new Error('no port');
      return address.port;
    }

    const socketCases: [string, string[], number, RegExp][] = [
      ['unknown chain', ['-A', 'NOPE', '-j', 'ACCEPT'], 1, /chain NOPE does not exist/],
      ['unknown chain to list', ['-L', 'NOPE'], 1, /chain NOPE does not exist/],
      [
        'a rule option the service refuses',
        ['-A', 'INPUT', '-p', 'tcp', '--bogus'],
        2,
        /unknown option --bogus/,
      ],
      ['an option portcullis does not know', ['-Q', 'INPUT'], 2, /unknown option "-Q"/],
      ['a missing chain', ['-A'], 2, /-A requires an argument/],
      ['-R without a rule number', ['-R', 'INPUT', '-j', 'ACCEPT'], 2, /-R requires a rule number/],
      ['two commands', ['-A', 'INPUT', '-D', 'INPUT'], 2, /one command at a time/],
      ['no command', ['-p', 'tcp'], 2, /no command specified/],
      ['an unknown command word', ['frobnicate'], 2, /unknown command "frobnicate"/],
      ['a table that does not exist', ['-t', 'nosuch', '-L'], 3, /table "nosuch" does not exist/],
      ['a bad policy', ['-P', 'INPUT', 'MAYBE'], 1, /Bad policy name "MAYBE"/],
      ['a rule number out of range', ['-D', 'INPUT', '99'], 1, /.+/],
      ['a rule that is not there', ['-D', 'INPUT', '-p', 'tcp', '--dport', '9', '-j', 'DROP'], 1, /.+/],
      ['-C of a missing rule', ['-C', 'INPUT', '-p', 'udp', '--dport', '9', '-j', 'DROP'], 1, /Bad rule/],
      ['a chain that exists', ['-N', 'LOG_AND_DROP'], 1, /already exists/],
      [
        'a word iptables cannot read',
        ['-A', 'INPUT', '-m', 'comment', '--comment', 'a\nb'],
        2,
        /control character/,
      ],
      ['deleting a built-in chain', ['-X', 'INPUT'], 2, /INPUT/],
      ['a policy on a user chain', ['-P', 'LOG_AND_DROP', 'DROP'], 2, /LOG_AND_DROP/],
      ['a restore file that does not parse', ['restore'], 1, /line 1: .*outside a table/],
      ['counters in restore', ['restore', '--counters'], 2, /--counters is not supported/],
    ];

    it.each(socketCases)('%s', async (_name, argv, code, message) => {
      const r = await runCli(argv, { env: env(), stdin: '-A INPUT -j ACCEPT\n' });
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^portcullis: [^\n]+\n$/);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(code);
    });

    it('service down: no socket', async () => {
      const r = await runCli(['-L'], { env: { PORTCULLIS_SOCKET: '/nonexistent/portcullis.sock' } });
      expect(r).toEqual({
        code: 4,
        stdout: '',
        stderr:
          'portcullis: cannot reach the service at unix:/nonexistent/portcullis.sock: no such socket (is the service running? start it with npm start)\n',
      });
    });

    it('service down: nothing listens on the URL', async () => {
      const port = await closedPort();
      const r = await runCli(['-S'], {
        env: { PORTCULLIS_URL: `http://127.0.0.1:${port}`, PORTCULLIS_TOKEN: 'x' },
      });
      expect(r.code).toBe(4);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `portcullis: cannot reach the service at http://127.0.0.1:${port}: connection refused (is the service running?)\n`,
      );
    });

    it('wrong token, missing token, read-only token', async () => {
      const url = svc?.url ?? '';
      const wrong = await runCli(['-S'], { env: { PORTCULLIS_URL: url, PORTCULLIS_TOKEN: 'not-the-token' } });
      expect(wrong).toMatchObject({ code: 4, stdout: '' });
      expect(wrong.stderr).toMatch(/^portcullis: the token is not valid \(set PORTCULLIS_TOKEN[^\n]*\)\n$/);
      const missing = await runCli(['--url', url, '-S'], { env: {} });
      expect(missing).toMatchObject({ code: 4, stdout: '' });
      expect(missing.stderr).toMatch(/^portcullis: this request needs a token[^\n]*\n$/);
      const reader = { PORTCULLIS_URL: url, PORTCULLIS_TOKEN: svc?.readToken ?? '' };
      expect((await runCli(['-S', 'INPUT'], { env: reader })).code).toBe(0);
      const write = await runCli(['-N', 'READER'], { env: reader });
      expect(write).toMatchObject({ code: 4, stdout: '' });
      expect(write.stderr).toMatch(/^portcullis: this request needs a write token[^\n]*\n$/);
      const writer = { PORTCULLIS_URL: url, PORTCULLIS_TOKEN: svc?.token ?? '' };
      expect(await runCli(['-N', 'WRITER'], { env: writer })).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(await runCli(['-X', 'WRITER'], { env: writer })).toEqual({ code: 0, stdout: '', stderr: '' });
    });
  });
});
