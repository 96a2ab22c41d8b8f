/**
 * GET /v1/tables/{table}/chains/{chain} answers an unchanged chain from the view and JSON it
 * wrote for the last read (ChainViewCache, routes.ts chainJson). It must never answer with a
 * chain that changed: after every step of a random sequence of changes (appends, inserts,
 * deletes by id of rules with identical copies, whose ids then shift, policies, flushes,
 * replaces, and changes by another process followed by a re-read), each read is byte for byte
 * what JSON.stringify writes for the ChainResponse built afresh from the model, in both
 * families. Reads repeat so that most of them are answered from the cache.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import { parseRuleSpec } from '../../../src/iptables/rule-parser.js';
import { type ChainState, freshEntry } from '../../../src/service/state.js';
import { ChainViewCache, chainView } from '../../../src/service/views.js';
import { chainWire } from '../../../src/transport/http/wire.js';
import { prng } from '../../helpers/rule-gen.js';
import { filter, host } from '../../helpers/service.js';
import { startApp } from './helpers.js';

const CHAINS = ['INPUT', 'OUTPUT', 'CACHED'] as const;

describe('chain reads answered from the cache are never stale', () => {
  it.each(['ipv4', 'ipv6'] as const)(
    '%s: 300 random steps, every read equal to a fresh one',
    async (family: Family) => {
      const { app, service, fake } = await startApp({ families: [family] });
      await service.apply([{ op: 'createChain', family, table: 'filter', chain: 'CACHED' }]);
      const r = prng(family === 'ipv4' ? 41 : 43);
      const spec = () => {
        const h = host(family, r.int(1, 6)).canonical;
        return `-s ${h} -p tcp -m tcp --dport ${r.int(1, 4)} -j ${r.pick(['ACCEPT', 'DROP', 'RETURN'])}`;
      };
      const fresh = (chain: string) =>
        JSON.stringify({
          revision: service.revision,
          family,
          table: 'filter',
          chain: chainWire(
            service.getTable(family, 'filter').chains.find((c) => c.name === chain) ??
              (() => {
                throw new Error(`no chain ${chain}`);
              })(),
          ),
        });
      let reads = 0;
      for (let step = 0; step < 300; step++) {
        const chain = r.pick(CHAINS);
        const ids = service.getTable(family, 'filter').chains.find((c) => c.name === chain)?.rules ?? [];
        const at = { family, table: 'filter' as const, chain };
        switch (r.int(0, 7)) {
          case 0:
          case 1:
            await service.apply([{ op: 'append', ...at, rule: { spec: spec() } }]);
            break;
          case 2:
            await service.apply([
              { op: 'insert', ...at, position: r.int(1, ids.length + 1), rule: { spec: spec() } },
            ]);
            break;
          case 3:
            if (ids.length) await service.apply([{ op: 'delete', ...at, target: { id: r.pick(ids).id } }]);
            break;
          case 4:
            if (chain !== 'CACHED')
              await service.apply([{ op: 'setPolicy', ...at, policy: r.pick(['ACCEPT', 'DROP'] as const) }], {
                allowLockout: true,
              });
            break;
          case 5:
            if (r.int(0, 3) === 0) await service.apply([{ op: 'flushChain', ...at }], { allowLockout: true });
            else
              await service.apply(
                [{ op: 'replaceChain', ...at, rules: [{ spec: spec() }, { spec: spec() }] }],
                {
                  allowLockout: true,
                },
              );
            break;
          default: {
            // Another process changes the kernel; the service re-reads it.
            const line = `-A ${chain} ${spec()}`;
            await fake.restore(family, filter(line), { noflush: true });
            await service.reload();
          }
        }
        for (const c of [chain, r.pick(CHAINS)])
          for (let k = 0; k < 2; k++) {
            const res = await request(app).get(`/v1/tables/filter/chains/${c}?family=${family}`).expect(200);
            expect(res.text, `step ${step}, ${c}`).toBe(fresh(c));
            expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
            expect(res.headers.etag).toBe(`"${service.revision}"`);
            reads++;
          }
      }
      expect(reads).toBe(1200);
      await service.close();
    },
  );
});

describe('ChainViewCache', () => {
  const state = (name: string, rules: number): ChainState => ({
    name,
    policy: undefined,
    counters: undefined,
    entries: Array.from({ length: rules }, (_, i) =>
      freshEntry(
        parseRuleSpec(`-s 192.0.2.${i % 250}/32 -j DROP`, 'ipv4'),
        `-s 192.0.2.${i % 250}/32 -j DROP`,
        `id${i}`,
      ),
    ),
  });

  it('hands out the same view for the same state, within a budget of rules, least recently read first out', () => {
    const cache = new ChainViewCache(100);
    const [a, b, c] = [state('A', 20), state('B', 20), state('C', 20)];
    const va = cache.get('filter', a);
    expect(cache.get('filter', a)).toBe(va);
    expect(va).toEqual(chainView('filter', a));
    const vb = cache.get('filter', b);
    cache.get('filter', a); // A read last: B goes first
    const vc = cache.get('filter', c);
    cache.get('filter', state('D', 20));
    cache.get('filter', state('E', 20)); // 5 x 21 rules: over the budget of 100, B is dropped
    expect(cache.get('filter', b)).not.toBe(vb);
    expect(cache.get('filter', c)).toBe(vc);
    // Another state of the same chain is another view.
    expect(cache.get('filter', { ...a, policy: 'DROP' })).not.toBe(va);
    // A chain of more than a quarter of the budget is not kept.
    const big = state('BIG', 30);
    expect(cache.get('filter', big)).not.toBe(cache.get('filter', big));
  });
});
