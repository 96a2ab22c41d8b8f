/**
 * deploy/portcullis.yaml, the commented example configuration, is a configuration the
 * service accepts (every key it names exists, every value parses), and says what the unit
 * expects: the rules files netfilter-persistent uses, written after every change and loaded at
 * start, the state directory the unit creates, the socket in the unit's runtime directory.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'deploy', 'portcullis.yaml');

describe('deploy/portcullis.yaml', () => {
  it('loads as a configuration, with the values the unit relies on', () => {
    const r = loadConfig({ argv: ['--config', EXAMPLE], env: {} });
    if (r.help) throw new Error('unexpected help');
    expect(r.warnings).toEqual([]);
    expect(r.config).toMatchObject({
      restHost: '127.0.0.1',
      socket: '/run/portcullis/portcullis.sock',
      stateDir: '/var/lib/portcullis',
      persist: 'after-change',
      restoreOnStart: true,
      rulesFiles: { ipv4: '/etc/iptables/rules.v4', ipv6: '/etc/iptables/rules.v6' },
      auditLog: '/var/log/portcullis/audit.log',
    });
    expect(r.config.tokens.map((t) => `${t.name}:${t.scope}`)).toEqual(['admin:write', 'prometheus:read']);
  });
});
