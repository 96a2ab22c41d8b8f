/**
 * The structured log (pino): JSON lines with level, time, msg and fields; the request id of
 * the request being served on every line written while serving it; credentials (tokens,
 * Authorization values, PEM keys and certificates) never written, whatever field or text
 * they hide in.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observe/logger.js';
import { requestContext, requestIdFrom } from '../../src/observe/request-context.js';

function capture(level: 'debug' | 'info' = 'info') {
  const lines: string[] = [];
  const log = createLogger({ level, format: 'json', destination: { write: (s: string) => lines.push(s) } });
  return { log, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), lines };
}

const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----';
const PEM_CERT = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----';

describe('structured logs', () => {
  it('writes one JSON object per line: level label, ISO time, msg and the fields', () => {
    const { log, records } = capture();
    log.info('REST API listening', { transport: 'rest', address: '127.0.0.1:8080' });
    log.debug('not written at info');
    const [r] = records();
    expect(records()).toHaveLength(1);
    expect(r).toMatchObject({
      level: 'info',
      msg: 'REST API listening',
      transport: 'rest',
      address: '127.0.0.1:8080',
    });
    expect(String(r?.time)).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it('puts the request id on every line written while a request is served', async () => {
    const { log, records } = capture();
    await requestContext.run({ requestId: 'req-42' }, async () => {
      log.info('first');
      await new Promise((res) => setTimeout(res, 5));
      log.child({ transport: 'rest' }).warn('after an await, from a child logger');
    });
    log.info('outside');
    expect(records().map((r) => r.requestId)).toEqual(['req-42', 'req-42', undefined]);
  });

  it('never writes tokens, Authorization values, keys or certificates', () => {
    const { log, lines } = capture();
    log.info('request', {
      token: 's3cr3t-token',
      authorization: 'Bearer s3cr3t-token',
      key: PEM_KEY,
      detail: `the client sent Authorization: Bearer s3cr3t-token and ${PEM_CERT}`,
      nested: { password: 'hunter2', list: [`Bearer s3cr3t-token`] },
      error: new Error(`failed with ${PEM_KEY}`),
    });
    log.error(`message with Bearer s3cr3t-token and ${PEM_CERT}`);
    const text = lines.join('');
    for (const secret of ['s3cr3t-token', 'hunter2', 'MIGHAgEAMBMG', 'MIIBszCCAVmg', 'BEGIN PRIVATE KEY'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
    expect(text).toContain('[redacted pem]');
  });

  it('keeps a client request id that is a plain token, replaces anything else', () => {
    expect(requestIdFrom('abc-123_x.y:z')).toBe('abc-123_x.y:z');
    for (const bad of [undefined, '', 'has space', 'x'.repeat(200), 'new\nline', '"quoted"']) {
      expect(requestIdFrom(bad)).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
