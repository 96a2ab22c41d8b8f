import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Family, TableName } from '../../src/domain/family.js';
import { ChildProcessExecutor } from '../../src/exec/child-process-executor.js';
import { ExecError, type Generation, type HandleRef } from '../../src/exec/executor.js';
import { NftRuleHandles } from '../../src/exec/nft-handles.js';
import { isFeedLost, NftChangeFeed } from '../../src/exec/nft-monitor.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';

const TAKE_MS = 10_000;

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Resolves with the first external generation matching `match`, or rejects after `ms`. */
function nextExternal(
  feed: NftChangeFeed,
  match: (g: Generation) => boolean,
  ms = TAKE_MS,
): Promise<Generation> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching external generation within ${ms} ms`));
    }, ms);
    const off = feed.onExternal((g) => {
      if (!match(g)) return;
      clearTimeout(timer);
      off();
      resolve(g);
    });
  });
}

describeKernel('nf_tables change feed and rule handles', () => {
  const ns = useNetns('pnft');
  let feed: NftChangeFeed;
  let exec: ChildProcessExecutor;
  let handles: NftRuleHandles;
  const external: Generation[] = [];

  beforeAll(async () => {
    exec = new ChildProcessExecutor({ netns: ns().name });
    handles = new NftRuleHandles({ netns: ns().name });
    feed = new NftChangeFeed({ netns: ns().name });
    const t0 = performance.now();
    await feed.start();
    console.log(`[nft] monitor live after ${(performance.now() - t0).toFixed(0)} ms`);
    feed.onExternal((g) => external.push(g));
  });

  afterAll(async () => {
    await feed?.close();
  });

  /** Restores `text` as ours and takes its generations (one per table with changes). */
  async function ownRestore(family: Family, text: string, tables: number): Promise<readonly Generation[]> {
    let pid: number | undefined;
    const result = await exec.restore(family, text, {
      noflush: true,
      onSpawn: (p) => {
        pid = p;
        feed.claim(p);
      },
    });
    expect(result.pid).toBe(pid);
    return feed.takeOwn(pid!, tables, TAKE_MS);
  }

  async function saveBody(family: Family, table: TableName): Promise<string[]> {
    const text = await exec.save(family, { table });
    return text.split('\n').filter((l) => l.startsWith('-A '));
  }

  it('sees our own restore: one generation per table, rule handles in input order, nothing external', async () => {
    const before = external.length;
    const gens = await ownRestore(
      'ipv4',
      [
        '*filter',
        ':OWN - [0:0]',
        '-A INPUT -s 192.0.2.1/32 -j ACCEPT',
        '-A INPUT -s 192.0.2.2/32 -j ACCEPT',
        '-A OWN -s 192.0.2.3/32 -j DROP',
        '-A INPUT -j OWN',
        'COMMIT',
        '*nat',
        '-A PREROUTING -s 192.0.2.4/32 -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
      2,
    );
    expect(gens).toHaveLength(2);
    const [filterGen, natGen] = gens as [Generation, Generation];
    expect(filterGen.command).toBe('iptables-restor');
    expect(filterGen.families).toEqual(['ipv4']);
    expect(filterGen.rules.map((r) => [r.op, r.table, r.chain])).toEqual([
      ['add', 'filter', 'INPUT'],
      ['add', 'filter', 'INPUT'],
      ['add', 'filter', 'OWN'],
      ['add', 'filter', 'INPUT'],
    ]);
    expect(natGen.rules.map((r) => [r.op, r.table, r.chain])).toEqual([['add', 'nat', 'PREROUTING']]);
    expect(natGen.otherEvents).toBeGreaterThan(0); // table and chain creation
    expect(natGen.id).toBeGreaterThan(filterGen.id);

    // handles listed by `list` are the ones the feed reported, in chain order
    const listed = await handles.list('ipv4', 'filter');
    const h = filterGen.rules.map((r) => r.handle);
    expect(listed.get('INPUT')).toEqual([h[0], h[1], h[3]]);
    expect(listed.get('OWN')).toEqual([h[2]]);
    expect((await handles.list('ipv4', 'nat')).get('PREROUTING')).toEqual([natGen.rules[0]?.handle]);
    expect(feed.claimCount).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(external.slice(before).filter((g) => g.command === 'iptables-restor')).toEqual([]);
  });

  it('delivers an external `iptables -I INPUT 1` to onExternal, not to takeOwn', async () => {
    const seen = nextExternal(feed, (g) => g.command === 'iptables');
    const run = await ns().exec(['iptables', '-I', 'INPUT', '1', '-s', '192.0.2.100', '-j', 'DROP']);
    expect(run.code).toBe(0);
    const g = await seen;
    expect(g.pid).toBeGreaterThan(0);
    expect(g.rules).toEqual([
      {
        op: 'add',
        family: 'ipv4',
        table: 'filter',
        chain: 'INPUT',
        handle: expect.any(Number),
        placement: 'start',
      },
    ]);
    expect((await handles.list('ipv4', 'filter')).get('INPUT')?.[0]).toBe(g.rules[0]?.handle);
    // the pid was never claimed: a takeOwn for it now finds nothing
    await expect(feed.takeOwn(g.pid!, 1, 50)).resolves.toEqual([]);
  });

  it('lists an empty map for a table that does not exist', async () => {
    expect((await handles.list('ipv4', 'raw')).size).toBe(0);
    expect((await handles.list('ipv6', 'filter')).size).toBe(0);
  });

  it('deletes exactly the rules by handle after another process shifted their positions', async () => {
    const gens = await ownRestore(
      'ipv4',
      [
        '*filter',
        ':SHIFT - [0:0]',
        '-A SHIFT -s 198.51.100.1/32 -j ACCEPT',
        '-A SHIFT -s 198.51.100.2/32 -j ACCEPT',
        '-A SHIFT -s 198.51.100.3/32 -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
      1,
    );
    const [a, , c] = gens[0]!.rules.map((r) => r.handle);
    for (const ip of ['198.51.100.9', '198.51.100.8']) {
      const seen = nextExternal(feed, (g) => g.rules.some((r) => r.chain === 'SHIFT'));
      expect((await ns().exec(['iptables', '-I', 'SHIFT', '1', '-s', ip, '-j', 'DROP'])).code).toBe(0);
      await seen;
    }
    const refs: HandleRef[] = [
      { table: 'filter', chain: 'SHIFT', handle: a! },
      { table: 'filter', chain: 'SHIFT', handle: c! },
    ];
    const res = await handles.delete('ipv4', refs);
    expect(res.pid).toBeGreaterThan(0);
    expect((await saveBody('ipv4', 'filter')).filter((l) => l.startsWith('-A SHIFT'))).toEqual([
      '-A SHIFT -s 198.51.100.8/32 -j DROP',
      '-A SHIFT -s 198.51.100.9/32 -j DROP',
      '-A SHIFT -s 198.51.100.2/32 -j ACCEPT',
    ]);
  });

  it('fails a delete naming a missing handle with not_found and the ref index, changing nothing', async () => {
    const listed = await handles.list('ipv4', 'filter');
    const shift = listed.get('SHIFT')!;
    expect(shift.length).toBe(3);
    const before = await saveBody('ipv4', 'filter');
    const cases: { refs: HandleRef[]; line: number }[] = [
      {
        refs: [
          { table: 'filter', chain: 'SHIFT', handle: shift[0]! },
          { table: 'filter', chain: 'SHIFT', handle: 999_999 },
          { table: 'filter', chain: 'SHIFT', handle: shift[1]! },
        ],
        line: 2,
      },
      {
        refs: [
          { table: 'filter', chain: 'SHIFT', handle: shift[0]! },
          { table: 'filter', chain: 'SHIFT', handle: shift[1]! },
          { table: 'filter', chain: 'NOCHAIN', handle: shift[2]! },
        ],
        line: 3,
      },
      {
        // the right handle in the wrong chain
        refs: [{ table: 'filter', chain: 'INPUT', handle: shift[2]! }],
        line: 1,
      },
      {
        // a table that does not exist in this namespace
        refs: [
          { table: 'filter', chain: 'SHIFT', handle: shift[0]! },
          { table: 'raw', chain: 'PREROUTING', handle: 1 },
        ],
        line: 2,
      },
      {
        // the same handle twice: the second one is missing by then
        refs: [
          { table: 'filter', chain: 'SHIFT', handle: shift[0]! },
          { table: 'filter', chain: 'SHIFT', handle: shift[0]! },
        ],
        line: 2,
      },
    ];
    for (const { refs, line } of cases) {
      const err = await handles.delete('ipv4', refs).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ExecError);
      expect((err as ExecError).kind).toBe('not_found');
      expect((err as ExecError).line).toBe(line);
      expect((err as ExecError).message).toMatch(/does not exist/);
    }
    expect(await saveBody('ipv4', 'filter')).toEqual(before);
  });

  it('deletes rules in chains nft cannot name in its text syntax (keywords, leading digits, +)', async () => {
    const chains = ['log', 'counter', '9abc', 'a+b'];
    const gens = await ownRestore(
      'ipv4',
      [
        '*filter',
        ...chains.map((c) => `:${c} - [0:0]`),
        ...chains.flatMap((c) => [`-A ${c} -s 192.0.2.50/32`, `-A ${c} -s 192.0.2.51/32`]),
        'COMMIT',
        '',
      ].join('\n'),
      1,
    );
    const rules = gens[0]!.rules;
    expect(rules.map((r) => r.chain)).toEqual(chains.flatMap((c) => [c, c]));
    const listed = await handles.list('ipv4', 'filter');
    for (const c of chains)
      expect(listed.get(c)).toEqual(rules.filter((r) => r.chain === c).map((r) => r.handle));

    // a missing handle among them: attributed by re-listing
    const missing = await handles
      .delete('ipv4', [
        { table: 'filter', chain: 'log', handle: rules[0]!.handle },
        { table: 'filter', chain: '9abc', handle: 999_999 },
      ])
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(missing).toMatchObject({ kind: 'not_found', line: 2 });

    await handles.delete(
      'ipv4',
      rules.filter((_, i) => i % 2 === 0).map((r) => ({ table: 'filter', chain: r.chain, handle: r.handle })),
    );
    const after = await saveBody('ipv4', 'filter');
    for (const c of chains) {
      expect(after.filter((l) => l.startsWith(`-A ${c} `))).toEqual([`-A ${c} -s 192.0.2.51/32`]);
    }
  });

  it('works for ipv6 too', async () => {
    const gens = await ownRestore(
      'ipv6',
      [
        '*filter',
        '-A INPUT -s 2001:db8::1/128 -j ACCEPT',
        '-A INPUT -s 2001:db8::2/128 -j ACCEPT',
        '-A INPUT -s 2001:db8::3/128 -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
      1,
    );
    const g = gens[0]!;
    expect(g.families).toEqual(['ipv6']);
    expect(g.rules.every((r) => r.family === 'ipv6' && r.op === 'add')).toBe(true);
    const h = g.rules.map((r) => r.handle);
    expect((await handles.list('ipv6', 'filter')).get('INPUT')).toEqual(h);

    const seen = nextExternal(feed, (x) => x.command === 'ip6tables');
    expect((await ns().exec(['ip6tables', '-I', 'INPUT', '2', '-s', '2001:db8::9', '-j', 'DROP'])).code).toBe(
      0,
    );
    const ext = await seen;
    expect(ext.rules[0]).toMatchObject({ op: 'add', family: 'ipv6', placement: { after: h[0] } });

    const err = await handles
      .delete('ipv6', [
        { table: 'filter', chain: 'INPUT', handle: h[1]! },
        { table: 'filter', chain: 'INPUT', handle: 999_999 },
      ])
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ kind: 'not_found', line: 2 });
    await handles.delete('ipv6', [
      { table: 'filter', chain: 'INPUT', handle: h[0]! },
      { table: 'filter', chain: 'INPUT', handle: h[2]! },
    ]);
    expect(await saveBody('ipv6', 'filter')).toEqual([
      '-A INPUT -s 2001:db8::9/128 -j DROP',
      '-A INPUT -s 2001:db8::2/128 -j ACCEPT',
    ]);
  });

  it('reports its own deletes as generations of the delete pid, claimed through onSpawn', async () => {
    const listed = await handles.list('ipv4', 'filter');
    const target = listed.get('SHIFT')![0]!;
    let claimed: number | undefined;
    const external: Generation[] = [];
    const off = feed.onExternal((g) => external.push(g));
    const res = await handles.delete('ipv4', [{ table: 'filter', chain: 'SHIFT', handle: target }], {
      onSpawn: (pid) => {
        claimed = pid;
        feed.claim(pid);
      },
    });
    expect(res.pid).toBe(claimed);
    const own = await feed.takeOwn(claimed!, 1, 5000);
    off();
    expect(external.filter((g) => g.pid === claimed)).toEqual([]);
    const g = own[0];
    expect(g?.pid).toBe(claimed);
    expect(g?.command).toBe('nft');
    expect(g?.rules).toEqual([
      { op: 'delete', family: 'ipv4', table: 'filter', chain: 'SHIFT', handle: target },
    ]);
  });

  it('measures: feed and list on a 10k-rule chain, deleting 256 handles in one transaction', async () => {
    const N = 10_000;
    const lines = ['*filter', ':BIG - [0:0]'];
    for (let i = 0; i < N; i++)
      lines.push(`-A BIG -s 198.51.100.${i & 255}/32 -p tcp -m tcp --dport ${(i >> 8) + 1} -j ACCEPT`);
    lines.push('COMMIT', '');
    let t = performance.now();
    let pid: number | undefined;
    await exec.restore('ipv4', lines.join('\n'), {
      noflush: true,
      onSpawn: (p) => {
        pid = p;
        feed.claim(p);
      },
    });
    const restoreMs = performance.now() - t;
    const gens = await feed.takeOwn(pid!, 1, 60_000);
    const feedMs = performance.now() - t;
    expect(gens[0]!.rules).toHaveLength(N);

    t = performance.now();
    const listed = await handles.list('ipv4', 'filter');
    const listMs = performance.now() - t;
    const big = listed.get('BIG')!;
    expect(big).toEqual(gens[0]!.rules.map((r) => r.handle));

    const victims = big.filter((_, i) => i % 39 === 0).slice(0, 256);
    expect(victims).toHaveLength(256);
    t = performance.now();
    await handles.delete(
      'ipv4',
      victims.map((handle) => ({ table: 'filter', chain: 'BIG', handle })),
    );
    const deleteMs = performance.now() - t;
    const remaining = (await handles.list('ipv4', 'filter')).get('BIG')!;
    const gone = new Set(victims);
    expect(remaining).toEqual(big.filter((h) => !gone.has(h)));
    console.log(
      `[nft] restore of ${N} rules: ${restoreMs.toFixed(0)} ms, their handles from the feed after ${feedMs.toFixed(0)} ms; list table with ${N} rules: ${listMs.toFixed(0)} ms; delete 256 handles: ${deleteMs.toFixed(0)} ms`,
    );
  }, 120_000);

  it('runs the monitor 10 nicer than the service while it reads the ruleset, as nice as the service once live', async () => {
    const own = getPriority();
    const other = new NftChangeFeed({ netns: ns().name });
    const plain = new NftChangeFeed({ netns: ns().name, startNice: 0 });
    try {
      const starting = other.start();
      const pid = other.pid!;
      expect(getPriority(pid)).toBe(Math.min(19, own + 10));
      await starting;
      expect(getPriority(pid)).toBe(own);
      const plainStart = plain.start();
      expect(getPriority(plain.pid!)).toBe(own);
      await plainStart;
    } finally {
      // A failed assertion must not leave a monitor running.
      await Promise.all([other.close(), plain.close()]);
    }
  });

  it('leaves the monitor as nice as the service where it could not give the priority back', () => {
    // Without CAP_SYS_NICE (and RLIMIT_NICE 0, the default) a nicer monitor would stay nicer.
    const r = spawnSync(
      'setpriv',
      [
        '--bounding-set=-sys_nice',
        '--inh-caps=-sys_nice',
        process.execPath,
        '--import',
        'tsx',
        join(import.meta.dirname, '..', 'fixtures', 'feed-nice.ts'),
        ns().name,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const own = getPriority();
    expect(JSON.parse(r.stdout)).toEqual({ own, during: own, after: own });
  });

  it('holds a commit that comes after its takeOwn gave up for the `late` check, not for onExternal', async () => {
    const monitor = feed.pid!;
    const commit = async (chain: string, late?: (g: Generation) => boolean) => {
      let pid: number | undefined;
      process.kill(monitor, 'SIGSTOP'); // the monitor this suite started: it falls behind
      try {
        await exec.restore(
          'ipv4',
          `*filter\n:${chain} - [0:0]\n-A ${chain} -s 192.0.2.7/32 -j DROP\nCOMMIT\n`,
          {
            noflush: true,
            onSpawn: (p) => {
              pid = p;
              feed.claim(p);
            },
          },
        );
        expect(await feed.takeOwn(pid!, 1, 50, late)).toEqual([]); // gave up: nothing seen yet
      } finally {
        process.kill(monitor, 'SIGCONT');
      }
      await feed.barrier(); // everything committed so far has been delivered
      return pid!;
    };
    const seen: Generation[] = [];
    const before = external.length;
    const mine = await commit('LATE_OK', (g) => {
      seen.push(g);
      return true;
    });
    expect(seen.map((g) => [g.pid, g.rules.map((r) => [r.op, r.chain])])).toEqual([
      [mine, [['add', 'LATE_OK']]],
    ]);
    expect(external.slice(before).filter((g) => g.pid === mine)).toEqual([]);

    const refused = await commit('LATE_NO', () => false);
    expect(
      external
        .slice(before)
        .filter((g) => g.pid === refused)
        .map((g) => g.rules.map((r) => r.chain)),
    ).toEqual([['LATE_NO']]);
    const without = await commit('LATE_NONE');
    expect(external.slice(before).filter((g) => g.pid === without)).toHaveLength(1);
  });

  it('tells apart the commits of one long-lived restore after a wait for one of them gave up', async () => {
    // One process, batch after batch (restore-session.ts): each use has its own takeOwn, in
    // order. A use whose wait ends short must not lend its late commit to the next use.
    const session = new ChildProcessExecutor({ netns: ns().name, longLivedRestore: true });
    const monitor = feed.pid!;
    const before = external.length;
    const pids: number[] = [];
    const restore = (chain: string) =>
      session.restore('ipv4', `*filter\n:${chain} - [0:0]\n-A ${chain} -s 192.0.2.8/32 -j DROP\nCOMMIT\n`, {
        noflush: true,
        reuse: true,
        onSpawn: (p) => {
          pids.push(p);
          feed.claim(p);
        },
      });
    const chainsOf = (gs: readonly Generation[]) => gs.flatMap((g) => g.rules.map((r) => r.chain));
    const lateSeen: string[] = [];
    const late = (g: Generation) => {
      lateSeen.push(...chainsOf([g]));
      return true;
    };
    // C times out as the pid's last use; D, in the same process, comes after it.
    process.kill(monitor, 'SIGSTOP'); // the monitor this suite started: it falls behind
    let d: Promise<readonly Generation[]>;
    try {
      await restore('SESS_C');
      expect(await feed.takeOwn(pids[0]!, 1, 50, late)).toEqual([]);
      await restore('SESS_D');
      d = feed.takeOwn(pids[1]!, 1, 60_000, late);
    } finally {
      process.kill(monitor, 'SIGCONT');
    }
    expect(chainsOf(await d)).toEqual(['SESS_D']);
    // A times out while B waits behind it (not the pid's last use).
    process.kill(monitor, 'SIGSTOP');
    let b: Promise<readonly Generation[]>;
    try {
      await restore('SESS_A');
      const a = feed.takeOwn(pids[2]!, 1, 100, late);
      await restore('SESS_B');
      b = feed.takeOwn(pids[3]!, 1, 60_000, late);
      expect(await a).toEqual([]);
    } finally {
      process.kill(monitor, 'SIGCONT');
    }
    expect(chainsOf(await b)).toEqual(['SESS_B']);
    expect(new Set(pids).size).toBe(1); // one process for all four
    expect(lateSeen).toEqual(['SESS_C', 'SESS_A']);
    await feed.barrier();
    expect(external.slice(before).filter((g) => g.pid === pids[0])).toEqual([]);
  });

  it('keeps up with a busy event loop: a 1,000-rule commit arrives within a few turns of it', async () => {
    // Through Node's stdio socket pair the monitor (which writes every fragment separately)
    // blocked after about a dozen rules until the loop came round to read: a loop busy with
    // requests took seconds per thousand rules. A pipe holds ~500 rules between two reads.
    expect(statSync(`/proc/${feed.pid}/fd/1`).isFIFO()).toBe(true);
    const N = 1000;
    const text = ['*filter', ':BUSY - [0:0]'];
    for (let i = 0; i < N; i++)
      text.push(`-A BUSY -s 192.0.2.${i % 250}/32 -p udp -m udp --dport ${i + 1} -j DROP`);
    let pid: number | undefined;
    await exec.restore('ipv4', `${text.join('\n')}\nCOMMIT\n`, {
      noflush: true,
      onSpawn: (p) => {
        pid = p;
        feed.claim(p);
      },
    });
    // Every turn of the loop: one look at the monitor's output, then 40 ms of other work.
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      if (!spinning) return;
      turns++;
      const end = performance.now() + 40;
      while (performance.now() < end);
      setImmediate(spin);
    };
    setImmediate(spin);
    const gens = await feed.takeOwn(pid!, 1, 60_000);
    spinning = false;
    expect(gens.flatMap((g) => g.rules).filter((r) => r.chain === 'BUSY')).toHaveLength(N);
    console.log(`[nft] a ${N}-rule commit through a loop busy 40 ms a turn: ${turns} turns`);
    expect(turns).toBeLessThanOrEqual(12);
  }, 120_000);

  it('reports a dead monitor as FEED_LOST, and close() leaves no process behind', async () => {
    const other = new NftChangeFeed({ netns: ns().name });
    await other.start();
    const pid = other.pid!;
    expect(processGone(pid)).toBe(false);
    const lost = new Promise<Generation>((resolve) => other.onExternal((g) => isFeedLost(g) && resolve(g)));
    const waiting = other.takeOwn(1, 1, 60_000);
    process.kill(pid, 'SIGKILL'); // the monitor this test started
    expect(isFeedLost(await lost)).toBe(true);
    await expect(waiting).resolves.toEqual([]);
    expect(other.lost).toBeInstanceOf(ExecError);
    await other.close();

    const mine = feed.pid!;
    await feed.close();
    expect(feed.pid).toBeUndefined();
    expect(processGone(mine)).toBe(true);
  });
});
