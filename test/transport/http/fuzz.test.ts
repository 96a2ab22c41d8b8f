/**
 * Hostile bodies and parameters at the REST door: seeded random JSON, deep nesting, huge
 * numbers, wrong types, malformed JSON and odd path parameters, sent over a real loopback
 * connection to every write route. No answer may be a 5xx; a body nested deeper than the
 * limit is a 400 naming the limit. PORTCULLIS_FUZZ_SEED overrides the seed.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH } from '../../../src/transport/nesting.js';
import { type AppFixture, startApp } from './helpers.js';

const SEED = Number(process.env.PORTCULLIS_FUZZ_SEED ?? 20240809);
const REQUESTS = 2000;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUTES: readonly [string, string][] = [
  ['POST', '/v1/tables/filter/chains/INPUT/rules'],
  ['POST', '/v1/tables/filter/chains/INPUT/rules/ensure'],
  ['POST', '/v1/tables/filter/chains/INPUT/rules/at/{position}'],
  ['DELETE', '/v1/tables/filter/chains/INPUT/rules/at/{position}'],
  ['PUT', '/v1/tables/filter/chains/{chain}/rules'],
  ['PUT', '/v1/tables/filter/chains/INPUT/rules/0123456789abcdef'],
  ['PUT', '/v1/tables/{table}'],
  ['POST', '/v1/transactions'],
  ['POST', '/v1/tables/filter/chains'],
  ['PUT', '/v1/tables/filter/chains/INPUT/policy'],
  ['POST', '/v1/tables/filter/chains/{chain}/rename'],
  ['POST', '/v1/reset'],
];

const ODD_POSITIONS = [
  '0x1',
  '1.0',
  '+1',
  ' 1',
  '1e0',
  '01',
  '-1',
  '0',
  '99999999999999999999',
  '%00',
  'NaN',
  '١',
];
const ODD_NAMES = ['INPUT', '\ufeffEMPTY', 'a b', '%F0%9F%94%A5', '-x', 'x'.repeat(80), '%00', 'EMPTY'];
const STRINGS = [
  '',
  'INPUT',
  '-j DROP',
  '-p tcp --dport 22 -j ACCEPT',
  '\u0000',
  '\n-A INPUT -j DROP',
  '\ufeff',
  'x',
];
const KEYS = [
  'rule',
  'spec',
  'rules',
  'operations',
  'op',
  'chain',
  'position',
  'name',
  'newName',
  'policy',
  'chains',
  'matches',
  'target',
  'module',
  'family',
  'table',
  'dryRun',
];

/** Numbers JavaScript cannot hold, put into the JSON text after JSON.stringify. */
const HUGE = '__huge__';
const TINY = '__tiny__';
function withHugeNumbers(text: string): string {
  return text
    .replaceAll(`"${HUGE}"`, '123456789012345678901234567890e300')
    .replaceAll(`"${TINY}"`, '-1e-400');
}

function randomJson(rand: () => number, depth: number): unknown {
  const int = (n: number) => Math.floor(rand() * n);
  const k = depth <= 0 ? int(5) : int(8);
  switch (k) {
    case 0:
      return [HUGE, TINY, -0, 1.5, 2 ** 53 + 1, -1, 0][int(7)];
    case 1:
      return STRINGS[int(STRINGS.length)];
    case 2:
      return [true, false, null][int(3)];
    case 3:
      return int(5);
    case 4:
      return 'abc'.repeat(int(4));
    case 5:
    case 6: {
      const o: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) o[KEYS[int(KEYS.length)] as string] = randomJson(rand, depth - 1);
      return o;
    }
    default:
      return Array.from({ length: int(4) }, () => randomJson(rand, depth - 1));
  }
}

function deepText(depth: number, kind: number): string {
  if (kind === 0) return `${'['.repeat(depth)}${']'.repeat(depth)}`;
  if (kind === 1) return `{"rule":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
  if (kind === 3) {
    // Inside a typed match, whose options the schema leaves open.
    const open = '{"module":"comment","x":';
    return `{"rule":{"matches":[${open}${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}]}}`;
  }
  return `{"operations":[${'{"op":['.repeat(depth)}${']}'.repeat(depth)}]}`;
}

interface Case {
  readonly method: string;
  readonly path: string;
  readonly body: string;
  readonly kind: string;
  readonly deep: boolean;
  readonly key?: string;
}

function generate(rand: () => number, n: number): Case[] {
  const int = (m: number) => Math.floor(rand() * m);
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const [method, template] = ROUTES[int(ROUTES.length)] as [string, string];
    const path = template
      .replace('{position}', ODD_POSITIONS[int(ODD_POSITIONS.length)] as string)
      .replace('{chain}', ODD_NAMES[int(ODD_NAMES.length)] as string)
      .replace('{table}', ['filter', 'raw', 'nope', 'FILTER'][int(4)] as string)
      .replace(/[^\x21-\x7e]/gu, (ch) => encodeURIComponent(ch));
    const kind = ['random', 'deep', 'malformed', 'typed'][i % 4] as string;
    let body: string;
    let deep = false;
    switch (kind) {
      case 'random':
        body = withHugeNumbers(JSON.stringify(randomJson(rand, 5)) ?? 'null');
        break;
      case 'deep': {
        const depth = MAX_NESTING_DEPTH + 1 + int(i % 8 === 1 ? 20_000 : 300);
        body = deepText(depth, int(4));
        deep = true;
        break;
      }
      case 'malformed': {
        const chars = [...(JSON.stringify(randomJson(rand, 3)) ?? '{}')];
        for (let m = 1 + int(3); m > 0 && chars.length > 0; m--) {
          chars[int(chars.length)] = ['{', '"', ']', '\\', ',', ':', '\u00ff', 'e'][int(8)] as string;
        }
        body = chars.join('');
        break;
      }
      default: {
        // Plausible shapes with wrong types or extreme values in known fields.
        const v = () => randomJson(rand, 1);
        const shapes = [
          { spec: v() },
          { rule: { protocol: v(), matches: [{ module: 'tcp', dport: v() }], target: { target: v() } } },
          { rules: [{ spec: v() }, v()] },
          { operations: [{ op: 'append', chain: v(), rule: { spec: '-j DROP' } }, { op: v() }] },
          { operations: [{ op: 'insert', chain: 'INPUT', position: v(), rule: { spec: '-j DROP' } }] },
          { chains: [{ name: v(), rules: v() }] },
          { name: v() },
          { newName: v() },
          { policy: v() },
          { position: v(), spec: '-j ACCEPT' },
          { family: v(), table: v() },
        ];
        body = withHugeNumbers(JSON.stringify(shapes[int(shapes.length)]));
      }
    }
    out.push({ method, path, body, kind, deep, ...(int(2) === 0 ? { key: `fuzz-${i}` } : {}) });
  }
  return out;
}

function send(port: number, agent: http.Agent, c: Case): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: c.method,
        path: c.path,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(c.body),
          ...(c.key === undefined ? {} : { 'idempotency-key': c.key }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(c.body);
  });
}

describe('the REST door under hostile bodies', () => {
  let fx: AppFixture;
  let server: http.Server;
  let port: number;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  beforeAll(async () => {
    fx = await startApp({ maxBodyBytes: 1024 * 1024 });
    server = http.createServer(fx.app);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    agent.destroy();
    server.close();
    await fx.service.close();
  });

  it(`${REQUESTS} seeded hostile requests: never a 5xx; deeper than the limit is a 400 naming it`, async () => {
    const cases = generate(prng(SEED), REQUESTS);
    const counts: Record<string, number> = {};
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = next++; i < cases.length; i = next++) {
          const c = cases[i] as Case;
          const r = await send(port, agent, c);
          counts[r.status] = (counts[r.status] ?? 0) + 1;
          let ok = r.status < 500;
          if (ok && c.deep && !/^\{"type"[\s\S]*"malformed_json"/.test(r.body)) {
            ok = r.status === 400 && r.body.includes(`more than ${MAX_NESTING_DEPTH} levels deep`);
          }
          if (!ok && failures.length < 10) {
            failures.push(
              `${c.method} ${c.path} ${c.kind} ${c.body.slice(0, 120)} -> ${r.status} ${r.body.slice(0, 200)}`,
            );
          }
        }
      }),
    );
    console.log(`REST fuzz (seed ${SEED}): ${cases.length} requests; statuses ${JSON.stringify(counts)}`);
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(fx.logs.filter((l) => /internal error/.test(l))).toEqual([]);
  });
});
