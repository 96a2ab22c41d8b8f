import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { ChildProcessExecutor } from '../../src/exec/child-process-executor.js';
import { ExecError } from '../../src/exec/executor.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';

/**
 * The long-lived restore (exec/restore-session.ts) must be indistinguishable from one process per
 * batch: the same rules land, a failing batch fails alone with the same blamed line, blocks before
 * the failing one stay committed, and the batch after a failure works. Checked differentially
 * against a per-process executor on the same kernel.
 */
describeKernel('long-lived iptables-restore session (nf_tables)', () => {
  const ns = useNetns('psess');
  let session: ChildProcessExecutor;
  let single: ChildProcessExecutor;
  let nfTables = false;

  beforeAll(async () => {
    session = new ChildProcessExecutor({ netns: ns().name, longLivedRestore: true });
    single = new ChildProcessExecutor({ netns: ns().name });
    nfTables = (await single.info('ipv4')).backend === 'nf_tables';
  });
  afterAll(() => session?.close());

  const opts = (pids: number[]) => ({ noflush: true, reuse: true, onSpawn: (p: number) => pids.push(p) });

  async function ruleLines(family: Family, chain: string): Promise<string[]> {
    const text = await single.save(family, { table: 'filter' });
    return text.split('\n').filter((l) => l.startsWith(`-A ${chain} `));
  }

  for (const family of ['ipv4', 'ipv6'] as const) {
    const net = family === 'ipv4' ? '192.0.2.' : '2001:db8::';
    const chain = family === 'ipv4' ? 'SESS4' : 'SESS6';

    it(`${family}: batch after batch in one process, every rule lands in order`, async (ctx) => {
      if (!nfTables) ctx.skip();
      await single.restore(family, `*filter\n:${chain} - [0:0]\nCOMMIT\n`, { noflush: true });
      const pids: number[] = [];
      for (let b = 0; b < 5; b++) {
        const lines = Array.from(
          { length: 20 },
          (_, i) => `-A ${chain} -s ${net}${b * 20 + i + 1} -j ACCEPT`,
        );
        await session.restore(family, `*filter\n${lines.join('\n')}\nCOMMIT\n`, opts(pids));
      }
      expect(new Set(pids).size).toBe(1);
      const got = await ruleLines(family, chain);
      expect(got).toHaveLength(100);
      expect(got[0]).toContain(`${net}1/`);
      expect(got[99]).toContain(`${net}100/`);
    });

    it(`${family}: a failing batch fails alone, with the line a fresh process blames`, async (ctx) => {
      if (!nfTables) ctx.skip();
      const rule = (n: number) => `${chain} -s ${net}${200 + n} -j DROP`;
      const ok = (n: number) => `-A ${rule(n)}`;
      // Block 1 commits; block 2 fails at its second rule (input line 6).
      const bad = `*filter\n${ok(1)}\nCOMMIT\n*filter\n${ok(2)}\n-A ${chain} --no-such-option\nCOMMIT\n`;
      const pids: number[] = [];
      // Warm the session so the failing batch is not the process's first input.
      await session.restore(family, `*filter\n${ok(0)}\nCOMMIT\n`, opts(pids));
      const fromSession = await session.restore(family, bad, opts(pids)).then(
        () => undefined,
        (e: unknown) => e,
      );
      const before = await ruleLines(family, chain);
      // The same text through a process of its own, after removing what block 1 added.
      await single.restore(family, `*filter\n-D ${rule(1)}\nCOMMIT\n`, { noflush: true });
      const fromSingle = await single.restore(family, bad, { noflush: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(fromSession).toBeInstanceOf(ExecError);
      expect(fromSingle).toBeInstanceOf(ExecError);
      const a = fromSession as ExecError;
      const b = fromSingle as ExecError;
      expect(a.kind).toBe(b.kind);
      expect(a.line).toBe(6);
      expect(a.line).toBe(b.line);
      expect(a.lineText).toBe(b.lineText);
      // Block 1 committed, block 2 did not (its first rule is absent).
      expect(before.filter((l) => l.includes(`${net}201/`))).toHaveLength(1);
      expect(before.filter((l) => l.includes(`${net}202/`))).toHaveLength(0);

      // The next batch works (in a new process).
      await session.restore(family, `*filter\n${ok(3)}\nCOMMIT\n`, opts(pids));
      const after = await ruleLines(family, chain);
      expect(after.filter((l) => l.includes(`${net}203/`))).toHaveLength(1);
      expect(new Set(pids).size).toBe(2);

      // nf_tables blames COMMIT for a jump to a missing chain: the same line both ways.
      const jump = `*filter\n${ok(4)}\n-A ${chain} -j NO-SUCH-CHAIN\nCOMMIT\n`;
      const e1 = await session.restore(family, jump, opts(pids)).catch((e: unknown) => e);
      const e2 = await single.restore(family, jump, { noflush: true }).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(ExecError);
      expect((e1 as ExecError).line).toBe((e2 as ExecError).line);
      expect((e1 as ExecError).kind).toBe((e2 as ExecError).kind);
      expect(await ruleLines(family, chain)).toEqual(after);
    });
  }

  it('without reuse (or with --test / --counters) every restore is a process of its own', async (ctx) => {
    if (!nfTables) ctx.skip();
    const pids: number[] = [];
    const text = '*filter\n-A SESS4 -s 192.0.2.250 -j ACCEPT\nCOMMIT\n';
    await session.restore('ipv4', text, { noflush: true, onSpawn: (p) => pids.push(p) });
    await session.restore('ipv4', text, {
      noflush: true,
      test: true,
      reuse: true,
      onSpawn: (p) => pids.push(p),
    });
    await session.restore('ipv4', text, { noflush: true, onSpawn: (p) => pids.push(p) });
    expect(new Set(pids).size).toBe(3);
  });
});
