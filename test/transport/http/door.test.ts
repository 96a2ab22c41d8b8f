/**
 * What the REST door itself refuses, before the service sees a request: bodies nested
 * deeper than the limit, positions not written as canonical decimal digits, two
 * Authorization headers, and bodies over the size limit (the 413 names the limit and the
 * option that raises it; a table over the limit goes in as several Apply calls).
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH } from '../../../src/transport/nesting.js';
import { kernelRules, seedInput } from '../../helpers/service.js';
import { checked, problemOf, READ, startApp, WRITE } from './helpers.js';

const RULES = '/v1/tables/filter/chains/INPUT/rules';

/** JSON text of a typed rule whose comment option nests `depth` objects (built as text: JSON.stringify would overflow). */
function deepRule(depth: number): string {
  return `{"rule":{"matches":[{"module":"comment","comment":${'{"a":'.repeat(depth - 1)}"x"${'}'.repeat(depth - 1)}}]}}`;
}

describe('the nesting limit', () => {
  it(`refuses a body nested more than ${MAX_NESTING_DEPTH} levels with 400 naming the limit, before anything reads it`, async () => {
    const fx = await startApp();
    for (const depth of [MAX_NESTING_DEPTH + 1, 5000]) {
      const r = checked(
        await request(fx.app)
          .post(RULES)
          .set('Content-Type', 'application/json')
          .set('Idempotency-Key', `deep-${depth}`)
          .send(deepRule(depth)),
      );
      expect(problemOf(r)).toEqual({ status: 400, code: 'invalid_argument' });
      expect(r.body.detail).toContain(`more than ${MAX_NESTING_DEPTH} levels deep`);
    }
    // A deep array body is refused the same way (not by the schema, which would recurse).
    const text = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const r = checked(
      await request(fx.app).post('/v1/transactions').set('Content-Type', 'application/json').send(text),
    );
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain(`${MAX_NESTING_DEPTH} levels`);
    expect(await kernelRules(fx.fake, 'ipv4', 'INPUT')).toEqual(seedInput('ipv4'));
    // Just inside the limit is for the schema and the service to judge, not the door.
    const ok = checked(await request(fx.app).post(RULES).send({ spec: '-j ACCEPT' }));
    expect(ok.status).toBe(201);
    expect(fx.logs.filter((l) => l.includes('internal error'))).toEqual([]);
    await fx.service.close();
  });
});

describe('positions', () => {
  it.each(['0x1', '1.0', '+1', ' 1', '1e0', '01', '0', '-1', '2147483648', '١'])(
    'POST and DELETE rules/at/%j are 400 with field position, nothing changed',
    async (position) => {
      const fx = await startApp();
      const path = `${RULES}/at/${encodeURIComponent(position)}`;
      for (const r of [
        await request(fx.app).post(path).send({ spec: '-j DROP' }),
        await request(fx.app).delete(path),
      ]) {
        checked(r);
        expect(problemOf(r)).toEqual({ status: 400, code: 'invalid_argument', field: 'position' });
      }
      expect(await kernelRules(fx.fake, 'ipv4', 'INPUT')).toEqual(seedInput('ipv4'));
      await fx.service.close();
    },
  );

  it('canonical positions still work', async () => {
    const fx = await startApp();
    expect(checked(await request(fx.app).post(`${RULES}/at/1`).send({ spec: '-j DROP' })).status).toBe(201);
    expect(checked(await request(fx.app).delete(`${RULES}/at/4`)).status).toBe(200);
    await fx.service.close();
  });
});

describe('two Authorization headers', () => {
  it('are refused with 401, whichever comes first, and nothing is applied', async () => {
    const fx = await startApp({ requireAuth: true });
    for (const pair of [
      [WRITE, READ],
      [READ, WRITE],
      [WRITE, WRITE],
    ]) {
      // supertest joins repeated set() calls; send the raw header list instead.
      const r = checked(
        await request(fx.app)
          .post(RULES)
          .set('Authorization', pair as unknown as string)
          .send({ spec: '-j DROP' }),
      );
      expect(problemOf(r)).toEqual({ status: 401, code: 'unauthenticated' });
      expect(r.body.detail).toContain('2 Authorization headers');
    }
    expect(await kernelRules(fx.fake, 'ipv4', 'INPUT')).toEqual(seedInput('ipv4'));
    await fx.service.close();
  });
});

describe('the size limit', () => {
  it('a 413 names the limit in bytes and --max-body-bytes', async () => {
    const fx = await startApp({ maxBodyBytes: 4096 });
    const r = checked(
      await request(fx.app)
        .post(RULES)
        .send({ spec: `-m comment --comment "${'x'.repeat(5000)}" -j DROP` }),
    );
    expect(problemOf(r)).toEqual({ status: 413, code: 'payload_too_large' });
    expect(r.body.detail).toContain('the limit of 4096 bytes');
    expect(r.body.detail).toContain('--max-body-bytes');
    await fx.service.close();
  });

  it('a table larger than the limit goes in as several Apply calls into user chains, then one jump', async () => {
    const fx = await startApp({ maxBodyBytes: 16 * 1024, empty: true });
    const rules = Array.from({ length: 2000 }, (_, i) => ({
      spec: `-s 198.51.100.${(i % 250) + 1} -p tcp --dport ${1024 + i} -j DROP`,
    }));
    // In one request the table is over the limit.
    const whole = await request(fx.app)
      .put('/v1/tables/filter')
      .send({ chains: [{ name: 'BLOCK', rules }] });
    expect(whole.status).toBe(413);
    // In parts: create the chain, append in batches that fit, then hook it into INPUT.
    expect((await request(fx.app).post('/v1/tables/filter/chains').send({ name: 'BLOCK' })).status).toBe(201);
    const perCall = 100;
    for (let i = 0; i < rules.length; i += perCall) {
      const operations = rules.slice(i, i + perCall).map((rule) => ({ op: 'append', chain: 'BLOCK', rule }));
      const r = await request(fx.app).post('/v1/transactions').send({ operations });
      expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(200);
    }
    const jump = await request(fx.app)
      .post('/v1/transactions')
      .send({ operations: [{ op: 'append', chain: 'INPUT', rule: { spec: '-j BLOCK' } }] });
    expect(jump.status).toBe(200);
    expect(await kernelRules(fx.fake, 'ipv4', 'BLOCK')).toHaveLength(rules.length);
    await fx.service.close();
  });
});
