/**
 * The lockout guard's options: on by default protecting SSH on 22 from anywhere; the API's own
 * ports and the caller's path only when the API lives behind the managed firewall (no --netns).
 */
import { describe, expect, it } from 'vitest';
import { type Config, ConfigError, loadConfig } from '../src/config.js';

function load(argv: string[] = [], env: Record<string, string> = {}): Config {
  const r = loadConfig({ argv, env, cwd: '/' });
  if (r.help) throw new Error('unexpected help');
  return r.config;
}

function loadError(argv: string[]): string {
  try {
    load(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('lockout guard options', () => {
  it('protect SSH from anywhere by default, and the API ports and callers only without --netns', () => {
    expect(load().guard).toEqual({
      sshPorts: [22],
      sshSources: [],
      apiPorts: [8080, 50051],
      adminSources: [],
      protectCallers: true,
    });
    expect(load(['--netns', 'lab']).guard).toEqual({
      sshPorts: [22],
      sshSources: [],
      apiPorts: [],
      adminSources: [],
      protectCallers: false,
    });
  });

  it('take ports, sources and admin sources from flags and the environment', () => {
    const c = load(['--guard-ssh-ports', '22,2222', '--guard-ssh-sources', '192.0.2.0/24, 2001:db8::1'], {
      PORTCULLIS_GUARD_ADMIN_SOURCES: '198.51.100.7',
    });
    expect(c.guard).toMatchObject({
      sshPorts: [22, 2222],
      sshSources: ['192.0.2.0/24', '2001:db8::1'],
      adminSources: ['198.51.100.7'],
    });
    expect(load(['--guard-ssh-ports', '']).guard?.sshPorts).toEqual([]);
  });

  it('can be turned off', () => {
    expect(load(['--lockout-guard', 'false']).guard).toBeUndefined();
    expect(load([], { PORTCULLIS_LOCKOUT_GUARD: 'off' }).guard).toBeUndefined();
  });

  it('refuse bad values with one sentence naming the option', () => {
    expect(loadError(['--guard-ssh-ports', '22,0'])).toMatch(
      /^Invalid guardSshPorts from flag --guard-ssh-ports: expected a whole number from 1 to 65535/,
    );
    expect(loadError(['--guard-ssh-sources', '192.0.2.0/33'])).toMatch(
      /^Invalid guardSshSources .*expected an address or CIDR/,
    );
    expect(loadError(['--guard-admin-sources', 'example.com'])).toMatch(/^Invalid guardAdminSources/);
  });
});
