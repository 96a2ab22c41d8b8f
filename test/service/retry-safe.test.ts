/**
 * Every restore the service sends is safe from nf_tables' retry.
 *
 * When another process commits while iptables-restore (nf_tables) sends a block, the kernel
 * answers ERESTART and iptables re-reads the kernel and sends the block again; on that retry it
 * skips a `-N C` (or `:C - [0:0]`) of every chain C the kernel holds, even one the block
 * deleted first. So a block must never create a chain that existed when the block began
 * (test/iptables/restore-retry.test.ts shows the lie on a real kernel; the kernel differential
 * test meets the retry only by chance, its blocks being short).
 *
 * Here seeded random requests of every kind (test/helpers/op-gen.ts), in concurrent bursts so
 * that they batch, run on the fake executor, and every restore the service sends (changes,
 * undos, journal markers) is checked before it runs against the state it runs on. The model
 * must also equal the fake kernel after every burst.
 */
import { expect, it } from 'vitest';
import { FAMILIES, type Family, type TableName } from '../../src/domain/family.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { request, snapshotOf } from '../helpers/op-gen.js';
import { prng } from '../helpers/rule-gen.js';

const SEED = Number(process.env.PORTCULLIS_RETRY_SEED ?? 20261130) >>> 0;
const STEPS = Number(process.env.PORTCULLIS_RETRY_STEPS ?? 3000);

/**
 * The lines of restore `text` that a retry would skip: a chain created in a block that began
 * with the chain present. `save` is what the kernel holds before the restore; blocks are
 * followed in order, each starting from what the ones before it left.
 */
function retryUnsafe(save: string, family: Family, text: string): string[] {
  const chains = new Map<string, Set<string>>();
  for (const t of parseSave(save, family).tables) chains.set(t.name, new Set(t.chains.map((c) => c.name)));
  const unsafe: string[] = [];
  let now = new Set<string>();
  let atStart = new Set<string>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line.startsWith('*')) {
      const table = line.slice(1);
      now = chains.get(table) ?? new Set();
      chains.set(table, now);
      atStart = new Set(now);
      continue;
    }
    const [verb, a, b] = line.split(' ');
    const created = verb === '-N' ? a : /^:(\S+) - /.exec(line)?.[1];
    if (created !== undefined) {
      if (atStart.has(created)) unsafe.push(`line ${i + 1}: ${line}`);
      now.add(created);
    } else if (verb === '-X' && a !== undefined) now.delete(a);
    else if (verb === '-E' && a !== undefined && b !== undefined) {
      now.delete(a);
      now.add(b);
    }
  }
  return unsafe;
}

it('the checker finds a chain deleted and created again in one block, and not across blocks', () => {
  const save = '*filter\n:INPUT ACCEPT [0:0]\n:C - [0:0]\nCOMMIT\n';
  expect(retryUnsafe(save, 'ipv4', '*filter\n-X C\n-N C\nCOMMIT\n')).toEqual(['line 3: -N C']);
  expect(retryUnsafe(save, 'ipv4', '*filter\n-E C D\nCOMMIT\n*filter\n:C - [0:0]\nCOMMIT\n')).toEqual([]);
  expect(retryUnsafe(save, 'ipv4', '*filter\n-E C D\n:C - [0:0]\nCOMMIT\n')).toEqual(['line 3: :C - [0:0]']);
  expect(retryUnsafe(save, 'ipv4', '*filter\n-X C\nCOMMIT\n*filter\n-N C\nCOMMIT\n')).toEqual([]);
  expect(retryUnsafe(save, 'ipv4', '*nat\n-N C\nCOMMIT\n')).toEqual([]);
});

it(`${STEPS} random requests in bursts: no restore creates a chain its block began with (seed ${SEED})`, async () => {
  const fake = new FakeExecutor();
  const unsafe: string[] = [];
  let recreated = 0;
  const restore = fake.restore.bind(fake);
  fake.restore = async (family, text, options) => {
    const found = retryUnsafe(await fake.save(family), family, text);
    if (found.length > 0) unsafe.push(`[${family}] ${found.join('; ')}\n${text}`);
    // Restores that delete a chain and create it again (the shape the retry breaks).
    const lines = text.split('\n');
    if (lines.some((l) => l.startsWith('-X ') && lines.includes(`-N ${l.slice(3)}`))) recreated++;
    return restore(family, text, options);
  };
  const service = new FirewallService({
    executor: fake,
    pollIntervalMs: 0,
    families: FAMILIES,
    queue: { detectReentry: true },
  });
  await service.start();
  try {
    const r = prng(SEED);
    let steps = 0;
    let refused = 0;
    while (steps < STEPS) {
      const rulesets = new Map(FAMILIES.map((f) => [f, service.getRuleset(f).ruleset] as const));
      const snap = snapshotOf(
        rulesets,
        (family: Family, table: TableName, chain: string) =>
          service
            .getTable(family, table)
            .chains.find((c) => c.name === chain)
            ?.rules.map((x) => x.id) ?? [],
      );
      const requests = Array.from({ length: r.int(1, 8) }, () => request(r, snap, FAMILIES));
      const results = await Promise.allSettled(requests.map((ops) => service.apply(ops)));
      refused += results.filter((x) => x.status === 'rejected').length;
      steps += requests.length;
      for (const family of FAMILIES) {
        const kernel = (await fake.save(family)).replace(/^#.*\n/gm, '');
        expect(service.getRulesetText(family).text, `${family} after ${steps} requests`).toBe(kernel);
      }
    }
    console.log(
      `[retry-safe] seed ${SEED}: ${steps} requests, ${refused} refused, ${fake.restores.length} restores, ${recreated} deleting and creating a chain again`,
    );
    expect(recreated).toBeGreaterThan(10);
    expect(unsafe).toEqual([]);
  } finally {
    await service.close();
  }
}, 120_000);
