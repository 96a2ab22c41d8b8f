/**
 * The command table drives help and completion: every command has help with an example,
 * and completions/portcullis.bash is what `portcullis completion bash` prints now (a stale
 * file fails here: regenerate it with `npx portcullis completion bash > completions/portcullis.bash`).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { bashCompletion } from '../../src/cli/completion.js';
import { runCli } from './run-cli.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('help', () => {
  it.each(COMMANDS.map((c) => [c.name]))('%s --help shows usage, options and an example', async (name) => {
    const r = await runCli([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: portcullis /);
    expect(r.stdout).toMatch(/\nExamples?:\n {2}portcullis /);
  });

  it('lists every command in the overview, with the exit statuses', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(c.names.join(', '));
    expect(r.stdout).toMatch(/Exit status: 0 done; 1 /);
  });

  it('prints the version', async () => {
    const pkg: { version: string } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(await runCli(['--version'])).toEqual({
      code: 0,
      stdout: `portcullis ${pkg.version}\n`,
      stderr: '',
    });
  });
});

describe('bash completion', () => {
  it('completions/portcullis.bash is current', () => {
    expect(readFileSync(join(ROOT, 'completions', 'portcullis.bash'), 'utf8')).toBe(bashCompletion());
  });

  it("is valid bash and offers the commands and a verb's chains", async () => {
    const r = spawnSync('bash', ['-n', join(ROOT, 'completions', 'portcullis.bash')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const script = bashCompletion();
    for (const c of COMMANDS) for (const n of c.names) expect(script).toContain(n);
    expect(script).toContain('complete -F _portcullis portcullis');
    expect((await runCli(['completion', 'bash'])).stdout).toBe(script);
  });
});
