import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { TableName } from '../../../src/domain/family.js';
import {
  GetChainResponseSchema,
  GetTableResponseSchema,
} from '../../../src/gen/portcullis/v1/firewall_service_pb.js';
import type { ChainView } from '../../../src/service/api.js';
import { chainViewTo } from '../../../src/transport/grpc/convert.js';
import { encodeGetChainResponse, encodeGetTableResponse } from '../../../src/transport/grpc/encode-views.js';
import { generatedRuleset } from '../../helpers/rule-gen.js';
import { startService } from '../../helpers/service.js';

const TABLES: readonly TableName[] = ['filter', 'nat', 'mangle'];

/** What protobuf-es makes of convert.ts's init shapes: the reference the hand encoder must equal. */
const reference = {
  table: (revision: number, chains: readonly ChainView[]) =>
    toBinary(
      GetTableResponseSchema,
      create(GetTableResponseSchema, { revision: BigInt(revision), chains: chains.map(chainViewTo) }),
    ),
  chain: (revision: number, chain: ChainView) =>
    toBinary(
      GetChainResponseSchema,
      create(GetChainResponseSchema, { revision: BigInt(revision), chain: chainViewTo(chain) }),
    ),
};

describe('hand-written protobuf encoding of rule reads (GetChain, GetTable)', () => {
  for (const family of ['ipv4', 'ipv6'] as const)
    for (const seed of [1, 2, 3])
      it(`equals protobuf-es byte for byte on generated hostile rulesets (${family}, seed ${seed})`, async () => {
        const { service } = await startService({
          seed: { [family]: generatedRuleset(seed, 150, family, TABLES, { hostile: true, extras: true }) },
          families: [family],
        });
        try {
          let rules = 0;
          let withOptions = 0;
          for (const table of TABLES) {
            const { revision, chains } = service.getTable(family, table);
            expect(encodeGetTableResponse(revision, chains).bytes).toEqual(reference.table(revision, chains));
            for (const c of chains) {
              const { chain } = await service.getChain(family, table, c.name, { counters: true });
              expect(encodeGetChainResponse(revision, chain).bytes).toEqual(reference.chain(revision, chain));
              // Without counters an unchanged chain is the same view, its chain field encoded once.
              const plain = (await service.getChain(family, table, c.name)).chain;
              expect((await service.getChain(family, table, c.name)).chain).toBe(plain);
              for (const r of [revision, revision + 300, 0])
                expect(encodeGetChainResponse(r, plain).bytes).toEqual(reference.chain(r, plain));
              rules += chain.rules.length;
              withOptions += chain.rules.filter((v) =>
                v.rule.matches.some((m) => Object.keys(m).length > 1),
              ).length;
            }
          }
          // Not vacuous: many rules, most with typed match options (a Struct each).
          expect(rules).toBeGreaterThan(400);
          expect(withOptions).toBeGreaterThan(rules / 3);
        } finally {
          await service.close();
        }
      });

  it('equals protobuf-es for what generated rules lack: counters, expiry, policies, every JSON value', () => {
    const odd = {
      module: 'odd',
      none: null,
      zero: 0,
      negative: -1.5,
      big: 2 ** 53 + 2,
      empty: '',
      '': 'empty key',
      unicode: 'ünï ✓ \u{1F512}',
      yes: true,
      no: false,
      list: [1, 'two', null, [false], { deep: { er: [] } }],
      object: {},
      missing: undefined,
    };
    const chain: ChainView = {
      name: 'INPUT',
      builtin: true,
      policy: 'DROP',
      counters: { packets: 0n, bytes: 2n ** 64n - 1n },
      rules: [
        {
          id: 'a',
          position: 1,
          text: '-m odd -j ACCEPT',
          rule: { matches: [odd as never], target: { jump: 'ACCEPT' }, fragment: true, invert: ['fragment'] },
          counters: { packets: 3n, bytes: 0n },
          expiresAt: '2026-11-29T21:00:00.000Z',
        },
        {
          id: '',
          position: 0,
          text: '',
          rule: { matches: [{ module: 'raw', raw: ['--x', ''] }], target: { target: 'X', raw: [] } },
        },
        { id: 'c', position: 3, text: 't', rule: { source: '', matches: [], target: { goto: '' } } },
        {
          id: 'd',
          position: 4,
          text: 'u',
          rule: { matches: [{ module: '' } as never], target: { target: 'LOG', 'log-prefix': 'p' } as never },
        },
      ],
    };
    for (const revision of [0, 1, 2 ** 40]) {
      expect(encodeGetChainResponse(revision, chain).bytes).toEqual(reference.chain(revision, chain));
      const user: ChainView = { name: '', builtin: false, rules: [] };
      expect(encodeGetTableResponse(revision, [chain, user]).bytes).toEqual(
        reference.table(revision, [chain, user]),
      );
    }
  });
});
