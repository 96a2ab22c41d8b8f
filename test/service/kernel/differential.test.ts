/**
 * Differential test on the kernel: the model never lies.
 *
 * Seeded random requests of every operation kind (test/helpers/op-gen.ts),
 * single and as transactions, both families, four tables, are sent in
 * concurrent bursts so that they batch, while an external writer changes a
 * chain of its own (EXT) at the same time. After every burst the model (the
 * API's text read) must equal `iptables-save` of the namespace, and EXT must
 * hold exactly what the external writer put there (no change of ours, no
 * undo, ever touches another process's rules).
 *
 * Throughout every burst another process also commits as fast as it can (a
 * rule added to and deleted from BUSY), so that the service's restores can
 * meet a concurrent commit: nf_tables then answers ERESTART and iptables
 * re-reads and resends the block, a path with faults of its own (a `-N` of a
 * chain the block deleted is skipped). The service's blocks are short, so this
 * is rare here; test/iptables/restore-retry.test.ts widens the window to show
 * that fault on the kernel, and test/service/retry-safe.test.ts checks every
 * restore the service sends for it.
 *
 * The service runs without the change feed and without polling, so the model
 * is only what the service itself planned and applied: a re-read can never
 * hide a change that did not happen (the bug where a policy the API reported
 * was not in the kernel). The external-change path has its own tests.
 *
 * PORTCULLIS_DIFF_SEED and PORTCULLIS_DIFF_STEPS explore more; a failure
 * prints the seed, the burst, its requests and the first differing lines, and
 * replays each request of the burst alone on the state before it to name the
 * smallest request that breaks it.
 */
import { expect, it } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import { FirewallService } from '../../../src/service/firewall-service.js';
import type { Operation } from '../../../src/service/operations.js';
import { describeKernel } from '../../helpers/kernel.js';
import { type KernelService, startKernelService, stopKernelService } from '../../helpers/kernel-service.js';
import { EXTERNAL_CHAINS, request, snapshotOf } from '../../helpers/op-gen.js';
import { executorFor } from '../../helpers/roundtrip.js';
import { prng } from '../../helpers/rule-gen.js';

const SEED = Number(process.env.PORTCULLIS_DIFF_SEED ?? 20261129) >>> 0;
const STEPS = Number(process.env.PORTCULLIS_DIFF_STEPS ?? 2000);
const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

const EXTERNAL = new RegExp(`^(:|-A )(${EXTERNAL_CHAINS.join('|')}) `);

/**
 * iptables-save text without comment lines, EXT and BUSY (the external writers' chains) and counters.
 * A table left with nothing but built-in chains accepting everything is dropped: it is the same
 * ruleset as no table, and the writer's `-N EXT` makes the kernel show such a filter table that
 * the model, which never hears of EXT, does not have until a change of ours touches it.
 */
function comparable(text: string): string {
  const lines = text
    .split('\n')
    .filter((l) => !l.startsWith('#') && !EXTERNAL.test(l) && l !== '')
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ' [0:0]'));
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    let end = i + 1;
    while (end < lines.length && !(lines[end] as string).startsWith('*')) end++;
    const block = lines.slice(i, end);
    const inert = block.slice(1).every((l) => l === 'COMMIT' || /^:[A-Z]+ ACCEPT \[0:0\]$/.test(l));
    if (!inert) out.push(...block);
    i = end;
  }
  return out.join('\n');
}

function firstDifference(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i])
      return `line ${i + 1}:\n    model:  ${x[i] ?? '(none)'}\n    kernel: ${y[i] ?? '(none)'}`;
  }
  return 'no difference';
}

async function mismatch(k: KernelService, service: FirewallService): Promise<string | undefined> {
  for (const family of FAMILIES) {
    const kernel = comparable(await k.save(family));
    const model = comparable(service.getRulesetText(family).text);
    if (kernel !== model) return `${family} ${firstDifference(model, kernel)}`;
  }
  return undefined;
}

function snapshot(service: FirewallService) {
  const rulesets = new Map(FAMILIES.map((f) => [f, service.getRuleset(f).ruleset] as const));
  return snapshotOf(
    rulesets,
    (family, table, chain) =>
      service
        .getTable(family, table)
        .chains.find((c) => c.name === chain)
        ?.rules.map((r) => r.id) ?? [],
  );
}

/** Replays each request of a failing burst alone on the state before it; names the first that breaks it. */
async function shrink(before: Record<Family, string>, requests: readonly Operation[][]): Promise<string> {
  for (const [i, req] of requests.entries()) {
    const k = await startKernelService({ prefix: 'pdiffs', useNft: false, pollIntervalMs: 0 });
    try {
      for (const family of FAMILIES) await executorFor(k.ns).restore(family, before[family]);
      const service = new FirewallService({ executor: k.adapters.executor, pollIntervalMs: 0 });
      await service.start();
      await service.apply(req).catch(() => undefined);
      const m = await mismatch(k, service);
      await service.close();
      if (m) return `request ${i} alone breaks it: ${JSON.stringify(req)}\n  ${m}`;
    } finally {
      await stopKernelService(k);
    }
  }
  return 'no single request breaks it alone: it needs the batch (concurrency)';
}

/**
 * Two set-ups: without the change feed (the model is only what the service planned), and as in
 * production, with the nft monitor (deletes by rule handle, handles learned from the feed, other
 * processes' commits re-read), shorter.
 */
const SETUPS = [
  { name: 'without the change feed', feed: false, steps: STEPS, busy: 200 },
  // Every commit of another process makes the feed re-read the kernel: fewer of them per burst.
  {
    name: 'with the nft change feed and rule handles',
    feed: true,
    steps: Number(process.env.PORTCULLIS_DIFF_FEED_STEPS ?? 500),
    busy: 10,
  },
] as const;

describeKernel('differential: after every burst of random changes, the model equals the kernel', () => {
  it.each(SETUPS)(
    `$steps requests in concurrent bursts with an external writer, $name (seed ${SEED})`,
    async (setup) => {
      const STEPS = setup.steps;
      const k = await startKernelService({ prefix: 'pdiff', useNft: setup.feed, pollIntervalMs: 0 });
      if (setup.feed) expect(k.service.status().watch).toBe('nft-monitor');
      try {
        const { service } = k;
        const r = prng(SEED);
        // The external writer's chain, made after the service read the kernel: the model never
        // knows it, and every change of ours must leave it exactly as the writer left it.
        const ext: Record<Family, string[]> = { ipv4: [], ipv6: [] };
        for (const family of FAMILIES)
          for (const chain of EXTERNAL_CHAINS) await k.iptables(family, ['-N', chain]);
        const external = async () => {
          for (let n = r.int(1, 3); n > 0; n--) {
            const family = r.pick(FAMILIES);
            if (ext[family].length > 0 && r.chance(0.4)) {
              await k.iptables(family, ['-D', 'EXT', '1']);
              ext[family].shift();
            } else {
              const src =
                family === 'ipv4' ? `198.51.100.${r.int(1, 254)}/32` : `2001:db8:ee::${r.int(1, 999)}/128`;
              await k.iptables(family, ['-A', 'EXT', '-s', src, '-j', 'RETURN']);
              ext[family].push(`-s ${src} -j RETURN`);
            }
          }
        };
        // Commits as fast as it can until the burst is over (bounded); BUSY is empty between bursts.
        let bursting = false;
        let busyCommits = 0;
        const busy = async () => {
          for (let n = 0; bursting && n < setup.busy; n++) {
            const family = FAMILIES[n % 2] as Family;
            const src = family === 'ipv4' ? '198.51.100.250/32' : '2001:db8:ee::250/128';
            await k.iptables(family, ['-A', 'BUSY', '-s', src, '-j', 'RETURN']);
            await k.iptables(family, ['-D', 'BUSY', '-s', src, '-j', 'RETURN']);
            busyCommits += 2;
          }
        };
        let steps = 0;
        let bursts = 0;
        let refused = 0;
        while (steps < STEPS) {
          const snap = snapshot(service);
          // Once a re-read (after a refused change) has shown the model EXT or BUSY, a reset or
          // declarative replace of that filter table removes them, as documented: those two are
          // the only operations that act on chains the caller did not name, so they are left out then.
          const declarativeOverExt = (ops: Operation[]) =>
            ops.some(
              (op) =>
                (op.op === 'reset' || op.op === 'replaceTable') &&
                op.table === 'filter' &&
                EXTERNAL_CHAINS.some((c) => snap.chains.has(`${op.family ?? 'ipv4'}/filter/${c}`)),
            );
          const requests = Array.from({ length: r.int(1, 8) }, () => request(r, snap, FAMILIES)).filter(
            (ops) => !declarativeOverExt(ops),
          );
          const before = { ipv4: await k.save('ipv4'), ipv6: await k.save('ipv6') };
          const restoresBefore = k.calls.restores.length;
          // With the feed, every commit of another process makes the service re-read the kernel
          // (handles included): half the bursts run without them, so that deletes go by the
          // handles the service learned from its own commits.
          const quiet = setup.feed && r.chance(0.5);
          bursting = !quiet;
          const busyDone = busy();
          const results = await Promise.allSettled([
            ...requests.map((ops) => service.apply(ops, { origin: 'differential' })),
            quiet ? Promise.resolve() : external(),
          ]);
          bursting = false;
          await busyDone;
          const externalResult = results.at(-1);
          if (externalResult?.status === 'rejected') throw externalResult.reason;
          for (const res of results.slice(0, -1)) {
            if (res.status === 'rejected') {
              refused++;
              const code = (res.reason as { code?: string }).code;
              // A refusal is a domain error, never an internal one.
              expect(code, String((res.reason as Error).message)).not.toBe('internal');
            }
          }
          steps += requests.length;
          bursts++;
          const m = await mismatch(k, service);
          const extNow = {
            ipv4: await k.kernelRules('ipv4', 'EXT'),
            ipv6: await k.kernelRules('ipv6', 'EXT'),
          };
          const extLost = FAMILIES.find((f) => JSON.stringify(extNow[f]) !== JSON.stringify(ext[f]));
          if (m || extLost) {
            const why =
              m ??
              `EXT (${extLost}) changed: expected ${JSON.stringify(ext[extLost as Family])}, found ${JSON.stringify(extNow[extLost as Family])}`;
            const outcomes = results
              .slice(0, -1)
              .map((res, i) =>
                res.status === 'fulfilled'
                  ? `#${i} ok`
                  : `#${i} ${(res.reason as { code?: string }).code}: ${(res.reason as Error).message}`,
              )
              .join('; ');
            const minimal = m ? await shrink(before, requests) : '(external rules lost)';
            const restores = k.calls.restores
              .slice(restoresBefore)
              .map((x) => `  [${x.family}] ${x.outcome ?? 'pending'}\n${x.text}`)
              .join('');
            throw new Error(
              `${setup.name}, seed ${SEED}, burst ${bursts} (after ${steps} requests): the model is not the kernel\n  ${why}\n  burst: ${JSON.stringify(requests)}\n  outcomes: ${outcomes}\n  restores:\n${restores}\n  ${minimal}`,
            );
          }
        }
        console.log(
          `[differential] ${setup.name}, seed ${SEED}: ${steps} requests in ${bursts} bursts, ${refused} refused, ${busyCommits} commits of another process beside them, 0 differences`,
        );
      } finally {
        await stopKernelService(k);
      }
    },
    600_000,
  );
});
