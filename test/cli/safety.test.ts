/**
 * The CLI's change-safety and preset commands against a service on a real kernel namespace:
 * `--confirm` prints the id to keep a change with, `pending` lists it, `confirm` keeps it and
 * `rollback` undoes one now; `limit` and `harden` print what they changed, and nothing on a
 * second run; `--test` applies nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeKernel } from '../helpers/kernel.js';
import { type CliService, startCliService } from './cli-service.js';
import { runCli } from './run-cli.js';

describeKernel('portcullis: commit-confirmed and presets', () => {
  let svc: CliService | undefined;
  const service = (): CliService => {
    if (!svc) throw new Error('no service');
    return svc;
  };
  const cli = (...argv: string[]) => runCli(['--socket', service().socket, ...argv]);

  beforeAll(async () => {
    svc = await startCliService();
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
  }, 30_000);

  it('--confirm prints how to keep the change; pending lists it; confirm keeps it; rollback undoes one', async () => {
    const a = await cli('--confirm', '600', '-A', 'INPUT', '-p', 'udp', '--dport', '53', '-j', 'ACCEPT');
    expect(a.code).toBe(0);
    const id = /portcullis confirm ([0-9a-f]{16})/.exec(a.stderr)?.[1];
    expect(id, a.stderr).toBeDefined();
    const listed = await cli('pending');
    expect(listed.stdout).toContain(`${id}  rolled back at `);
    expect((await cli('confirm', id ?? '')).code).toBe(0);
    expect((await cli('pending')).stdout).toBe('');
    const b = await cli('--confirm', '600', '-A', 'INPUT', '-p', 'udp', '--dport', '123', '-j', 'ACCEPT');
    const id2 = /portcullis confirm ([0-9a-f]{16})/.exec(b.stderr)?.[1] ?? '';
    expect((await cli('rollback', id2)).code).toBe(0);
    expect((await cli('-S', 'INPUT')).stdout).toBe(
      '-P INPUT ACCEPT\n-A INPUT -p udp -m udp --dport 53 -j ACCEPT\n',
    );
    const gone = await cli('confirm', id2);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^portcullis: .*no pending confirmation/);
    expect((await cli('--confirm', '0', '-L')).code).toBe(2);
    expect((await cli('-F', 'INPUT')).code).toBe(0);
  });

  it('limit and harden print what they changed, nothing the second time; --test applies nothing', async () => {
    const dry = await cli('harden', '--test');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('-P INPUT DROP');
    expect((await cli('-S', 'INPUT')).stdout).toBe('-P INPUT ACCEPT\n');
    const limit = await cli('limit', 'ssh', '--hitcount', '4', '--seconds', '60');
    expect(limit.code).toBe(0);
    expect(limit.stdout).toContain('--update --seconds 60 --hitcount 4');
    expect((await cli('limit', 'ssh', '--hitcount', '4', '--seconds', '60')).stdout).toBe('');
    const harden = await cli('harden', '--allow-ssh-from', '192.0.2.0/24');
    expect(harden.code).toBe(0);
    expect(harden.stdout).toContain('-P INPUT DROP');
    expect((await cli('harden', '--allow-ssh-from', '192.0.2.0/24')).stdout).toBe('');
    expect((await cli('limit', 'nope')).code).toBe(2);
  });
});
