/**
 * Every command in README.md runs, so none can rot: each fenced ```sh block is run, in
 * order, in one bash session (variables carry over from block to block as they do for a
 * reader), against Portcullis started as the README says, managing a throwaway network
 * namespace with --netns (the e2e way: the API stays on the host's loopback). The service
 * starts as soon as a block has set PORTCULLIS_TOKENS; its real ports replace the README's
 * 127.0.0.1:8080 and 127.0.0.1:50051. curl fails on HTTP errors here (--fail-with-body), so
 * a command the API refuses fails the test, naming the block and its line.
 *
 * A block is run unless the line before it is `<!-- not run by test: REASON -->` (starting
 * the service, installing on a host); a new block is run by default.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { type PortcullisProcess, startPortcullis } from './e2e/portcullis.js';
import { describeKernel, useNetns } from './helpers/kernel.js';

const ROOT = join(import.meta.dirname, '..');
const SKIP = /^<!-- not run by test: (.+) -->$/;
const BLOCK_TIMEOUT_MS = 60_000;

interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly text: string;
  /** Why it is not run, when it is marked so. */
  readonly skip?: string;
}

/** The ```sh blocks of a Markdown text, with their skip markers. */
function shellBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const out: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i] as string)) continue;
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j] as string)) j++;
    let k = i - 1;
    while (k >= 0 && (lines[k] as string).trim() === '') k--;
    const marker = SKIP.exec((lines[k] ?? '').trim());
    out.push({
      line: i + 1,
      text: lines.slice(i + 1, j).join('\n'),
      ...(marker ? { skip: marker[1] as string } : {}),
    });
    i = j;
  }
  return out;
}

const SENTINEL = '__PORTCULLIS_README_BLOCK_DONE__';

/** A bash session fed one block at a time; `run` resolves with the block's output. */
class Shell {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  private exited: number | null = null;
  private wake: () => void = () => {};

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn('bash', ['--noprofile', '--norc'], {
      cwd: ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
      this.wake();
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => {
      this.err += d;
    });
    this.child.on('exit', (code) => {
      this.exited = code ?? -1;
      this.wake();
    });
    this.child.stdin.on('error', () => {});
    // Any failing command ends the session; curl fails on HTTP errors as a careful reader's would.
    this.child.stdin.write(
      'set -euo pipefail\ncurl() { command curl --silent --show-error --fail-with-body --max-time 30 "$@"; }\n',
    );
  }

  async run(text: string): Promise<{ stdout: string; stderr: string }> {
    this.out = '';
    this.err = '';
    this.child.stdin.write(`${text}\nprintf '\\n${SENTINEL}\\n'\n`);
    const deadline = Date.now() + BLOCK_TIMEOUT_MS;
    while (!this.out.includes(SENTINEL)) {
      if (this.exited !== null) {
        throw new Error(`exited with ${this.exited}\nstdout:\n${this.out}\nstderr:\n${this.err}`);
      }
      if (Date.now() > deadline) throw new Error(`did not finish within ${BLOCK_TIMEOUT_MS} ms\n${this.out}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return { stdout: this.out.slice(0, this.out.indexOf(SENTINEL)), stderr: this.err };
  }

  close(): void {
    if (this.exited === null) this.child.kill('SIGKILL');
  }
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
  return env;
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

it('finds the shell blocks of the README and the reason for every one not run', () => {
  const blocks = shellBlocks(README);
  expect(blocks.filter((b) => b.skip === undefined).length).toBeGreaterThanOrEqual(4);
  for (const b of blocks.filter((x) => x.skip !== undefined)) expect(b.skip?.length).toBeGreaterThan(5);
  // The marker detection itself.
  const sample = [
    '<!-- not run by test: starts the service -->',
    '```sh',
    'npm start',
    '```',
    '',
    '```sh',
    'true',
    '```',
  ];
  expect(shellBlocks(sample.join('\n'))).toEqual([
    { line: 2, text: 'npm start', skip: 'starts the service' },
    { line: 6, text: 'true' },
  ]);
});

describeKernel('every command of README.md', () => {
  const ns = useNetns('preadme');
  let service: PortcullisProcess | undefined;
  let shell: Shell | undefined;
  afterAll(async () => {
    shell?.close();
    await service?.stop();
  });

  it('runs, in order, against a service in a throwaway namespace', async () => {
    shell = new Shell(cleanEnv());
    const run = shellBlocks(README).filter((b) => b.skip === undefined);
    let ran = 0;
    for (const block of run) {
      let text = block.text;
      if (service) {
        text = text
          .replaceAll('127.0.0.1:8080', service.restUrl.replace(/^http:\/\//, ''))
          .replaceAll('127.0.0.1:50051', service.grpcAddress);
      }
      try {
        await shell.run(text);
      } catch (err) {
        throw new Error(
          `README.md block at line ${block.line} failed:\n${block.text}\n--- ${(err as Error).message}\n--- service log:\n${service?.log() ?? '(not started)'}`,
        );
      }
      ran++;
      if (!service) {
        const tokens = (await shell.run('printenv PORTCULLIS_TOKENS || true')).stdout.trim();
        if (tokens !== '') service = await startPortcullis({ netns: ns().name, tokens });
      }
    }
    expect(service, 'no README block sets PORTCULLIS_TOKENS before the API is used').toBeDefined();
    expect(ran).toBe(run.length);
    expect(await service?.stop()).toBe(0);
  });
});
