import { describe, expect, it } from 'vitest';
import { classifyStderr, ExecError, type ExecErrorKind, STDERR_PATTERNS } from '../../src/exec/executor.js';

const TRY = "Try `iptables-restore -h' or 'iptables-restore --help' for more information.\n";

interface Sample {
  what: string;
  stderr: string;
  exitCode: number | null;
  kind: ExecErrorKind;
  line?: number;
}

/**
 * Real stderr captured from iptables v1.8.9 (nf_tables) in a scratch network namespace,
 * except where marked legacy (libiptc / xtables lock texts of the legacy backend).
 */
const samples: Sample[] = [
  // not found
  {
    what: 'jump to a missing chain (nft blames the COMMIT line)',
    stderr: `iptables-restore v1.8.9 (nf_tables): Chain 'NOSUCHTARGET' does not exist\nError occurred at line: 9\n${TRY}`,
    exitCode: 2,
    kind: 'not_found',
    line: 9,
  },
  {
    what: '-D by spec of a missing rule',
    stderr: 'iptables-restore: line 2 failed: Bad rule (does a matching rule exist in that chain?).\n',
    exitCode: 1,
    kind: 'not_found',
    line: 2,
  },
  {
    what: '-D by spec in the middle of a batch',
    stderr: 'iptables-restore: line 6 failed: Bad rule (does a matching rule exist in that chain?).\n',
    exitCode: 1,
    kind: 'not_found',
    line: 6,
  },
  {
    what: '-A / -F / -X on a missing chain',
    stderr: 'iptables-restore: line 2 failed: No chain/target/match by that name.\n',
    exitCode: 1,
    kind: 'not_found',
    line: 2,
  },
  {
    what: '-D CHAIN N past the end',
    stderr: 'iptables-restore: line 2 failed: Index of deletion too big.\n',
    exitCode: 1,
    kind: 'not_found',
    line: 2,
  },
  {
    what: 'ip6tables -D by spec of a missing rule',
    stderr: 'ip6tables-restore: line 2 failed: Bad rule (does a matching rule exist in that chain?).\n',
    exitCode: 1,
    kind: 'not_found',
    line: 2,
  },
  {
    what: 'legacy: unknown target',
    stderr:
      "iptables-restore v1.8.9 (legacy): Couldn't load target `NOCHAIN':No such file or directory\n\nError occurred at line: 2\n",
    exitCode: 2,
    kind: 'not_found',
    line: 2,
  },
  {
    what: 'nft batch: rule delete ENOENT',
    stderr:
      'iptables-restore v1.8.9 (nf_tables): \nline 4: RULE_DELETE failed (No such file or directory): rule in chain INPUT\n',
    exitCode: 4,
    kind: 'not_found',
    line: 4,
  },
  {
    what: 'iptables command line: missing chain',
    stderr: 'iptables: No chain/target/match by that name.\n',
    exitCode: 1,
    kind: 'not_found',
  },
  // already exists
  {
    what: '-N of an existing chain',
    stderr: 'iptables-restore: line 2 failed: Chain already exists.\n',
    exitCode: 1,
    kind: 'already_exists',
    line: 2,
  },
  {
    what: 'nft batch: chain add EEXIST',
    stderr: 'iptables-restore v1.8.9 (nf_tables): \nline 3: CHAIN_ADD failed (File exists): chain FOO\n',
    exitCode: 4,
    kind: 'already_exists',
    line: 3,
  },
  // lock
  {
    what: 'legacy: lock held, no wait',
    stderr: 'Another app is currently holding the xtables lock. Perhaps you want to use the -w option?\n',
    exitCode: 4,
    kind: 'lock_timeout',
  },
  {
    what: 'legacy: lock held, waited',
    stderr: 'Another app is currently holding the xtables lock. Stopped waiting after 10s.\n',
    exitCode: 4,
    kind: 'lock_timeout',
  },
  {
    what: 'legacy: cannot open the lock file',
    stderr: "Can't lock /run/xtables.lock: Resource temporarily unavailable\n",
    exitCode: 4,
    kind: 'lock_timeout',
  },
  // permission
  {
    what: 'save as nobody / without CAP_NET_ADMIN',
    stderr:
      'iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
    exitCode: 4,
    kind: 'permission_denied',
  },
  {
    what: 'restore without CAP_NET_ADMIN',
    stderr:
      'iptables-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
    exitCode: 4,
    kind: 'permission_denied',
  },
  {
    what: 'EPERM',
    stderr: 'iptables-restore: line 2 failed: Operation not permitted\n',
    exitCode: 1,
    kind: 'permission_denied',
    line: 2,
  },
  // binary missing (through ip netns exec)
  {
    what: 'ip netns exec of a missing program',
    stderr: 'exec of "iptables-save" failed: No such file or directory\n',
    exitCode: 1,
    kind: 'binary_missing',
  },
  // namespace missing: deliberately not not_found
  {
    what: 'missing network namespace',
    stderr: 'Cannot open network namespace "nonexistent-ns-xyz": No such file or directory\n',
    exitCode: 255,
    kind: 'failed',
  },
  // invalid input
  {
    what: 'unknown option',
    stderr: `iptables-restore v1.8.9 (nf_tables): unknown option "--bogus"\nError occurred at line: 2\n${TRY}`,
    exitCode: 2,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'bad address (says "not found" but is bad input)',
    stderr: `iptables-restore v1.8.9 (nf_tables): host/network \`999.1.1.1' not found\nError occurred at line: 2\n${TRY}`,
    exitCode: 2,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'ipv4 address given to ip6tables',
    stderr:
      "ip6tables-restore v1.8.9 (nf_tables): host/network `192.0.2.1' not found\nError occurred at line: 2\nTry `ip6tables-restore -h' or 'ip6tables-restore --help' for more information.\n",
    exitCode: 2,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'unknown match',
    stderr: `iptables-restore v1.8.9 (nf_tables): Couldn't load match \`nosuchmatch':No such file or directory\n\nError occurred at line: 2\n${TRY}`,
    exitCode: 2,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'missing target option',
    stderr: `iptables-restore v1.8.9 (nf_tables): DNAT: option "--to-destination" must be specified\n\nError occurred at line: 2\n${TRY}`,
    exitCode: 2,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'missing COMMIT (line past the end)',
    stderr: 'iptables-restore: COMMIT expected at line 3\n',
    exitCode: 1,
    kind: 'invalid_input',
    line: 3,
  },
  {
    what: 'unknown table',
    stderr: `iptables-restore v1.8.9 (nf_tables): iptables-restore: line 1 table name 'nosuch' invalid\nError occurred at line: 1\n${TRY}`,
    exitCode: 2,
    kind: 'invalid_input',
    line: 1,
  },
  {
    what: 'insert position past the end',
    stderr: 'iptables-restore: line 2 failed: Index of insertion too big.\n',
    exitCode: 1,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'policy on a user chain',
    stderr: 'iptables-restore: line 2 failed: Bad built-in chain name.\n',
    exitCode: 1,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'bad policy',
    stderr: 'iptables-restore: line 2 failed: Bad policy name.\n',
    exitCode: 1,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'kernel rejects a target in this table (MASQUERADE in filter)',
    stderr:
      'iptables-restore v1.8.9 (nf_tables): \nline 2: RULE_APPEND failed (Invalid argument): rule in chain INPUT\n',
    exitCode: 4,
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: 'unrecognised parameter problem (exit 2)',
    stderr: 'iptables-restore v1.8.9 (nf_tables): something new\nError occurred at line: 4\n',
    exitCode: 2,
    kind: 'invalid_input',
    line: 4,
  },
  // failed
  {
    what: 'delete a chain still referenced',
    stderr:
      'iptables-restore v1.8.9 (nf_tables): \nline 2: CHAIN_DEL failed (Device or resource busy): chain FOO\n',
    exitCode: 4,
    kind: 'failed',
    line: 2,
  },
  { what: 'empty stderr', stderr: '', exitCode: 1, kind: 'failed' },
  { what: 'killed (no exit code)', stderr: '', exitCode: null, kind: 'failed' },
  {
    what: 'unknown text',
    stderr: 'iptables-restore: unable to initialize table filter\n',
    exitCode: 1,
    kind: 'failed',
  },
];

describe('classifyStderr', () => {
  it.each(samples)('$what -> $kind', ({ stderr, exitCode, kind, line }) => {
    const expected = line === undefined ? { kind } : { kind, line };
    expect(classifyStderr(stderr, exitCode)).toEqual(expected);
  });

  it('never reports line 0 or a non-number', () => {
    expect(classifyStderr('Error occurred at line: 0\n', 2)).toEqual({ kind: 'invalid_input' });
    expect(classifyStderr('line x failed\n', 1)).toEqual({ kind: 'failed' });
  });

  it('prefers the "Error occurred at line" form over other numbers in the text', () => {
    const stderr = `iptables-restore v1.8.9 (nf_tables): iptables-restore: line 1 table name 'x' invalid\nError occurred at line: 7\n`;
    expect(classifyStderr(stderr, 2).line).toBe(7);
  });

  it('keeps every pattern in one table, each with a hint', () => {
    for (const p of STDERR_PATTERNS) expect(p.hint.length).toBeGreaterThan(0);
  });
});

describe('ExecError', () => {
  it('carries its evidence and answers its predicates', () => {
    const e = new ExecError({
      kind: 'not_found',
      message: 'm',
      argv: ['iptables-restore', '-w', '10'],
      exitCode: 1,
      stderr: 's',
      line: 2,
      lineText: '-D INPUT 5',
    });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ExecError');
    expect(e.isNotFound()).toBe(true);
    expect(e.isAlreadyExists() || e.isLockTimeout() || e.isBinaryMissing()).toBe(false);
    expect(e.isPermissionDenied() || e.isTimeout() || e.isAborted()).toBe(false);
    expect([e.exitCode, e.stderr, e.line, e.lineText]).toEqual([1, 's', 2, '-D INPUT 5']);
    expect(Object.isFrozen(e.argv)).toBe(true);
  });

  it('leaves line and lineText absent when unknown', () => {
    const e = new ExecError({ kind: 'timeout', message: 'm', argv: [] });
    expect('line' in e).toBe(false);
    expect('lineText' in e).toBe(false);
    expect(e.exitCode).toBeNull();
    expect(e.isTimeout()).toBe(true);
  });
});
