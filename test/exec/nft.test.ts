import { describe, expect, it } from 'vitest';
import { ExecError } from '../../src/exec/executor.js';
import { NftRuleHandles, parseHandleListing, parseNftError } from '../../src/exec/nft-handles.js';
import {
  FEED_LOST,
  GenerationAssembler,
  isFeedLost,
  NftChangeFeed,
  parseMonitorLine,
} from '../../src/exec/nft-monitor.js';

// Every sample below was captured from nft v1.0.6 with iptables v1.8.9 (nf_tables) in a
// throw-away network namespace, unless marked (synthetic).

describe('parseMonitorLine', () => {
  it.each([
    {
      line: 'add rule ip filter INPUT ip saddr 192.0.2.2 counter packets 0 bytes 0 accept # handle 3',
      want: {
        kind: 'rule',
        op: 'add',
        family: 'ipv4',
        table: 'filter',
        chain: 'INPUT',
        handle: 3,
        after: undefined,
        insert: false,
      },
    },
    {
      // -m comment is not shown by nft 1.0.6 (two spaces where it was)
      line: 'add rule ip filter INPUT ip saddr 192.0.2.1  counter packets 0 bytes 0 accept # handle 9',
      want: { op: 'add', handle: 9, after: undefined },
    },
    {
      // iptables -I INPUT 1
      line: 'insert rule ip filter INPUT ip saddr 192.0.2.25 counter packets 0 bytes 0 # handle 21',
      want: { op: 'add', handle: 21, after: undefined, insert: true },
    },
    {
      // iptables -I INPUT 2: "handle 17" is the rule before it
      line: 'insert rule ip filter INPUT handle 17 ip saddr 192.0.2.24 counter packets 0 bytes 0 # handle 20',
      want: { op: 'add', handle: 20, after: 17, insert: true },
    },
    {
      // second half of iptables -R INPUT 2: the replacement keeps handle 2, after rule 4
      line: 'add rule ip filter INPUT handle 4 ip saddr 192.0.2.4 counter packets 0 bytes 0 drop # handle 2',
      want: { op: 'add', handle: 2, after: 4, insert: false },
    },
    {
      line: 'add rule ip filter my-chain.x counter packets 0 bytes 0 log prefix "pre # handle 5 {" # handle 13',
      want: { op: 'add', chain: 'my-chain.x', handle: 13, after: undefined },
    },
    {
      // (synthetic) newer nft prints comments; the real handle is the last one
      line: 'add rule ip filter INPUT ip saddr 192.0.2.1 counter packets 0 bytes 0 comment "x # handle 99 { }" accept # handle 50259',
      want: { op: 'add', handle: 50259, after: undefined },
    },
    {
      line: 'add rule ip filter we!rd$ch@in ip saddr 192.0.2.27 counter packets 0 bytes 0 # handle 23',
      want: { op: 'add', chain: 'we!rd$ch@in', handle: 23 },
    },
    {
      line: 'add rule ip filter INPUT tcp dport 22 xt match recent  counter packets 0 bytes 0 # handle 11',
      want: { op: 'add', handle: 11 },
    },
    {
      line: 'add rule ip6 filter INPUT ip6 saddr 2001:db8::1 counter packets 0 bytes 0 accept # handle 2',
      want: { op: 'add', family: 'ipv6', handle: 2 },
    },
    {
      line: 'add rule ip nat PREROUTING ip saddr 192.0.2.11 counter packets 0 bytes 0 accept # handle 2',
      want: { op: 'add', table: 'nat', chain: 'PREROUTING', handle: 2 },
    },
    {
      line: 'delete rule ip filter INPUT handle 3',
      want: { kind: 'rule', op: 'delete', family: 'ipv4', table: 'filter', chain: 'INPUT', handle: 3 },
    },
    {
      line: 'delete rule ip6 filter FOO handle 8',
      want: { op: 'delete', family: 'ipv6', chain: 'FOO', handle: 8 },
    },
    {
      line: '# new generation 7 by process 11939 (iptables-restor)',
      want: { kind: 'generation', id: 7, pid: 11939, command: 'iptables-restor' },
    },
    { line: '# new generation 5', want: { kind: 'generation', id: 5 } },
    { line: 'add table ip filter # handle 1', want: { kind: 'other', family: 'ipv4' } },
    {
      line: 'add chain ip filter INPUT { type filter hook input priority filter; policy drop; } # handle 1',
      want: { kind: 'other', family: 'ipv4' },
    },
    { line: 'create chain ip6 filter FOO # handle 5', want: { kind: 'other', family: 'ipv6' } },
    { line: 'delete chain ip filter FOO', want: { kind: 'other', family: 'ipv4' } },
    { line: 'add table inet portcullis_sync_1 # handle 4', want: { kind: 'other', family: undefined } },
    {
      // a rule of a family iptables does not manage is just another event
      line: 'add rule inet t c tcp dport 22 accept # handle 3',
      want: { kind: 'other', family: undefined },
    },
    { line: '# ERROR: We lost some netlink events!', want: { kind: 'lost' } },
    { line: '', want: { kind: 'ignored' } },
    {
      line: '# Cannot set up netlink receive socket buffer size to 16777216 bytes, falling back to 1048576 bytes',
      want: { kind: 'ignored' },
    },
  ])('$line', ({ line, want }) => {
    expect(parseMonitorLine(line)).toMatchObject(want);
  });
});

function assemble(text: string) {
  const a = new GenerationAssembler();
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    const r = a.push(line);
    if (r !== undefined) out.push(r);
  }
  return out;
}

describe('GenerationAssembler', () => {
  it('groups a captured session into generations', () => {
    const gens = assemble(
      [
        'add table ip filter # handle 1',
        'add chain ip filter INPUT { type filter hook input priority filter; policy accept; } # handle 1',
        'add rule ip filter INPUT ip saddr 192.0.2.1  counter packets 0 bytes 0 accept # handle 2',
        '# new generation 2 by process 16517 (iptables)',
        'delete rule ip filter INPUT handle 2',
        'add rule ip filter INPUT handle 4 ip saddr 192.0.2.4 counter packets 0 bytes 0 drop # handle 2',
        '# new generation 5 by process 16520 (iptables)',
        'add table ip6 filter # handle 2',
        'add rule ip6 filter INPUT ip6 saddr 2001:db8::1 counter packets 0 bytes 0 accept # handle 2',
        '# new generation 9 by process 16524 (ip6tables)',
        'delete rule ip filter INPUT handle 21',
        'add rule ip filter INPUT ip saddr 192.0.2.26 counter packets 0 bytes 0 # handle 21',
        '# new generation 28 by process 18208 (iptables)',
        '',
      ].join('\n'),
    );
    expect(gens).toEqual([
      {
        id: 2,
        pid: 16517,
        command: 'iptables',
        rules: [
          {
            op: 'add',
            family: 'ipv4',
            table: 'filter',
            chain: 'INPUT',
            handle: 2,
            placement: 'end',
          },
        ],
        otherEvents: 2,
        families: ['ipv4'],
      },
      {
        id: 5,
        pid: 16520,
        command: 'iptables',
        rules: [
          { op: 'delete', family: 'ipv4', table: 'filter', chain: 'INPUT', handle: 2 },
          {
            op: 'add',
            family: 'ipv4',
            table: 'filter',
            chain: 'INPUT',
            handle: 2,
            placement: { after: 4 },
            replaced: true,
          },
        ],
        otherEvents: 0,
        families: ['ipv4'],
      },
      {
        id: 9,
        pid: 16524,
        command: 'ip6tables',
        rules: [{ op: 'add', family: 'ipv6', table: 'filter', chain: 'INPUT', handle: 2, placement: 'end' }],
        otherEvents: 1,
        families: ['ipv6'],
      },
      {
        id: 28,
        pid: 18208,
        command: 'iptables',
        rules: [
          { op: 'delete', family: 'ipv4', table: 'filter', chain: 'INPUT', handle: 21 },
          // iptables -R INPUT 1: replaced in place at the head, not appended
          {
            op: 'add',
            family: 'ipv4',
            table: 'filter',
            chain: 'INPUT',
            handle: 21,
            placement: 'start',
            replaced: true,
          },
        ],
        otherEvents: 0,
        families: ['ipv4'],
      },
    ]);
  });

  it('discards a partial commit when events were lost', () => {
    const gens = assemble(
      [
        'add rule ip filter INPUT ip saddr 192.0.2.1 counter packets 0 bytes 0 # handle 2',
        '# ERROR: We lost some netlink events!',
        'add rule ip filter INPUT ip saddr 192.0.2.2 counter packets 0 bytes 0 # handle 3',
        '# new generation 3 by process 1 (iptables)',
      ].join('\n'),
    );
    expect(gens).toHaveLength(2);
    expect(gens[0]).toBe('lost');
    expect(gens[1]).toMatchObject({ id: 3, rules: [{ handle: 3 }] });
  });
});

describe('FEED_LOST', () => {
  it('is recognisable and distinct from any real generation', () => {
    expect(isFeedLost(FEED_LOST)).toBe(true);
    expect(FEED_LOST.pid).toBeUndefined();
    expect(isFeedLost({ ...FEED_LOST, otherEvents: 0 })).toBe(false);
  });
});

const LISTING_FILTER = `table ip filter { # handle 1
\tchain INPUT { # handle 1
\t\ttype filter hook input priority filter; policy drop;
\t\tip saddr 192.0.2.3 counter packets 0 bytes 0 drop # handle 4
\t\tip saddr 192.0.2.4 counter packets 0 bytes 0 drop # handle 2
\t\tip saddr 192.0.2.2 counter packets 0 bytes 0 accept # handle 3
\t\tip saddr 192.0.2.1  counter packets 0 bytes 0 accept # handle 9
\t\ttcp dport 22 xt match recent  counter packets 0 bytes 0 # handle 11
\t}

\tchain my-chain.x { # handle 12
\t\tcounter packets 0 bytes 0 log prefix "pre # handle 5 {" # handle 13
\t}

\tchain FORWARD { # handle 15
\t\ttype filter hook forward priority filter; policy drop;
\t}

\tchain we!rd$ch@in { # handle 22
\t\tip saddr 192.0.2.27 counter packets 0 bytes 0 # handle 23
\t}
}
`;

describe('parseHandleListing', () => {
  it.each([
    {
      name: 'a captured iptables-nft filter table',
      text: LISTING_FILTER,
      want: [
        ['INPUT', [4, 2, 3, 9, 11]],
        ['my-chain.x', [13]],
        ['FORWARD', []],
        ['we!rd$ch@in', [23]],
      ],
    },
    {
      name: 'with the iptables-nft warning line (printed on stderr by nft 1.0.6, tolerated in the text)',
      text: `# Warning: table ip filter is managed by iptables-nft, do not touch!\n${LISTING_FILTER}`,
      want: [
        ['INPUT', [4, 2, 3, 9, 11]],
        ['my-chain.x', [13]],
        ['FORWARD', []],
        ['we!rd$ch@in', [23]],
      ],
    },
    {
      name: '`nft -a list chain` form (no table handle) with an ip6 rule',
      text: 'table ip6 filter {\n\tchain INPUT { # handle 1\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip6 saddr 2001:db8::1 counter packets 0 bytes 0 accept # handle 2\n\t}\n}\n',
      want: [['INPUT', [2]]],
    },
    {
      name: '(synthetic) comments holding braces, "# handle" and a fake chain header',
      text: [
        'table ip filter { # handle 1',
        '\tchain INPUT { # handle 1',
        '\t\tcounter packets 0 bytes 0 comment "}" accept # handle 7',
        '\t\tcounter packets 0 bytes 0 comment "chain FOO { # handle 3" # handle 8',
        '\t\tcounter packets 0 bytes 0 comment "{ { # handle 1" # handle 9',
        '\t}',
        '\tchain "1234" { # handle 24',
        '\t\tip saddr 192.0.2.28 counter packets 0 bytes 0 # handle 25',
        '\t}',
        '}',
      ].join('\n'),
      want: [
        ['INPUT', [7, 8, 9]],
        ['1234', [25]],
      ],
    },
    {
      name: '(synthetic) a set block is not a chain',
      text: [
        'table ip filter { # handle 1',
        '\tset s { # handle 3',
        '\t\ttype ipv4_addr',
        '\t\telements = { 192.0.2.1, 192.0.2.2 }',
        '\t}',
        '\tchain OUTPUT { # handle 4',
        '\t\tip daddr @s drop # handle 5',
        '\t}',
        '}',
      ].join('\n'),
      want: [['OUTPUT', [5]]],
    },
    { name: 'empty output', text: '', want: [] },
  ])('$name', ({ text, want }) => {
    expect([...parseHandleListing(text)]).toEqual(want);
  });
});

describe('parseNftError', () => {
  it.each([
    {
      name: 'missing handle',
      stderr:
        '/dev/stdin:2:36-38: Error: Could not process rule: No such file or directory\ndelete rule ip filter INPUT handle 999\n                                   ^^^\n',
      want: { kind: 'not_found', line: 2, message: 'Could not process rule: No such file or directory' },
    },
    {
      name: 'missing chain',
      stderr:
        '/dev/stdin:2:23-26: Error: Could not process rule: No such file or directory\ndelete rule ip filter NOPE handle 4\n                      ^^^^\n',
      want: { kind: 'not_found', line: 2 },
    },
    {
      name: 'missing table, with a suggestion',
      stderr:
        '/dev/stdin:2:16-18: Error: No such file or directory; did you mean table ‘filter’ in family ip?\ndelete rule ip nat INPUT handle 4\n               ^^^\n',
      want: { kind: 'not_found', line: 2 },
    },
    {
      name: 'missing table in a fresh namespace',
      stderr:
        '/dev/stdin:1:16-21: Error: Could not process rule: No such file or directory\ndelete rule ip filter INPUT handle 3\n               ^^^^^^\n',
      want: { kind: 'not_found', line: 1 },
    },
    {
      name: 'two missing handles: the first line',
      stderr:
        '/dev/stdin:2:36-38: Error: Could not process rule: No such file or directory\ndelete rule ip filter INPUT handle 998\n                                   ^^^\n/dev/stdin:3:36-38: Error: Could not process rule: No such file or directory\ndelete rule ip filter INPUT handle 999\n                                   ^^^\n',
      want: { kind: 'not_found', line: 2 },
    },
    {
      name: 'the same handle twice: the whole second line',
      stderr:
        '/dev/stdin:2:1-37: Error: Could not process rule: No such file or directory\ndelete rule ip filter INPUT handle 3\n^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n',
      want: { kind: 'not_found', line: 2 },
    },
    {
      name: 'syntax error',
      stderr:
        '/dev/stdin:1:36-36: Error: syntax error, unexpected string, expecting number\ndelete rule ip filter INPUT handle x\n                                   ^\n',
      want: { kind: 'invalid_input', line: 1, message: 'syntax error, unexpected string, expecting number' },
    },
    {
      name: 'keyword as chain name',
      stderr:
        '/dev/stdin:1:23-25: Error: syntax error, unexpected log, expecting string\ndelete rule ip filter log handle 5\n                      ^^^\n',
      want: { kind: 'invalid_input', line: 1 },
    },
    {
      name: 'JSON input: no line',
      stderr: 'internal:0:0-0: Error: Could not process rule: No such file or directory\n\n',
      want: { kind: 'not_found', line: undefined },
    },
    {
      name: 'list of a missing table',
      stderr: 'Error: No such file or directory\nlist table ip nosuch\n              ^^^^^^\n',
      want: { kind: 'not_found', line: undefined, message: 'No such file or directory' },
    },
    {
      name: 'not root',
      stderr:
        'Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n',
      want: { kind: 'permission_denied' },
    },
    {
      name: 'missing namespace',
      stderr: 'Cannot open network namespace "nosuchns": No such file or directory\n',
      want: { kind: 'failed' },
    },
    {
      name: 'missing binary',
      stderr: 'exec of "nft-nope" failed: No such file or directory\n',
      want: { kind: 'binary_missing' },
    },
  ])('$name', ({ stderr, want }) => {
    const got = parseNftError(stderr);
    const { line, ...rest } = want as { line?: number };
    expect(got).toMatchObject(rest);
    if ('line' in want) expect(got.line).toBe(line);
    if (line === undefined) expect(got).not.toHaveProperty('line');
  });
});

describe('NftRuleHandles input validation', () => {
  const handles = new NftRuleHandles({ nft: '/nonexistent/nft-never-run' });
  const ok = { table: 'filter', chain: 'INPUT', handle: 1 } as const;

  it.each([
    { name: 'handle 0 (flushes the chain in nft 1.0.6)', ref: { ...ok, handle: 0 } },
    { name: 'negative handle', ref: { ...ok, handle: -3 } },
    { name: 'fractional handle', ref: { ...ok, handle: 1.5 } },
    { name: 'unsafe handle', ref: { ...ok, handle: 2 ** 60 } },
    { name: 'string handle', ref: { ...ok, handle: '3; flush ruleset' } },
    { name: 'chain with a newline', ref: { ...ok, chain: 'INPUT\nflush ruleset' } },
    { name: 'chain with a semicolon', ref: { ...ok, chain: 'INPUT;flush' } },
    { name: 'chain with a space', ref: { ...ok, chain: 'INPUT handle 3' } },
    { name: 'chain with a quote', ref: { ...ok, chain: 'a"b' } },
    { name: 'empty chain', ref: { ...ok, chain: '' } },
    { name: 'chain of 29 characters', ref: { ...ok, chain: 'A'.repeat(29) } },
    { name: 'unknown table', ref: { ...ok, table: 'inet' } },
    { name: 'table with a newline', ref: { ...ok, table: 'filter\nflush ruleset' } },
  ])('refuses $name before running anything', async ({ ref }) => {
    const err = await handles
      .delete('ipv4', [ok, ref as never])
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect((err as ExecError).kind).toBe('invalid_input');
    expect((err as ExecError).message).toMatch(/^ref 2:/);
    expect((err as ExecError).argv).toEqual([]);
  });

  it('runs nothing for no refs', async () => {
    await expect(handles.delete('ipv4', [])).resolves.toEqual({ pid: undefined });
  });

  it('refuses a bad family or table for list', async () => {
    await expect(handles.list('ipv5' as never, 'filter')).rejects.toMatchObject({ kind: 'invalid_input' });
    await expect(handles.list('ipv4', 'filter ip' as never)).rejects.toMatchObject({ kind: 'invalid_input' });
  });

  it('reports a missing nft binary', async () => {
    await expect(handles.list('ipv4', 'filter')).rejects.toMatchObject({ kind: 'binary_missing' });
  });
});

describe('NftChangeFeed without a kernel', () => {
  it.each([{ netns: 'a b' }, { nft: '' }, { startTimeoutMs: 0 }, { maxClaims: 0 }, { claimTtlMs: 1.5 }])(
    'rejects options %j',
    (options) => {
      expect(() => new NftChangeFeed(options)).toThrow(TypeError);
    },
  );

  it('takeOwn resolves with nothing at its timeout, and forgets the claim', async () => {
    const feed = new NftChangeFeed();
    feed.claim(424242);
    expect(feed.claimCount).toBe(1);
    await expect(feed.takeOwn(424242, 1, 10)).resolves.toEqual([]);
    expect(feed.claimCount).toBe(0);
  });

  it('keeps at most maxClaims claims', () => {
    const feed = new NftChangeFeed({ maxClaims: 3 });
    for (let pid = 1; pid <= 10; pid++) feed.claim(pid);
    expect(feed.claimCount).toBe(3);
  });

  it('release forgets a claim', () => {
    const feed = new NftChangeFeed();
    feed.claim(7);
    expect(feed.release(7)).toEqual([]);
    expect(feed.claimCount).toBe(0);
  });

  it('start fails with binary_missing when nft is not installed, leaving nothing behind', async () => {
    const feed = new NftChangeFeed({ nft: '/nonexistent/nft' });
    await expect(feed.start()).rejects.toMatchObject({ kind: 'binary_missing' });
    expect(feed.pid).toBeUndefined();
    await feed.close();
  });
});
