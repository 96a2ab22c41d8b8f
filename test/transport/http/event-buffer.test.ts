/**
 * The REST event buffer (Last-Event-ID catch-up) is bounded in memory, not only in events: a
 * declarative replace of 1% of a 500k-rule table is one event of ~5,000 changes, and 1,000 of
 * them would be millions of objects. And what it keeps holds no cut of the kernel's
 * iptables-save output: a rule's text in a change is a cut of the whole output the model was
 * read from (70 MB at 500k rules), and every buffered event of another read would keep one more
 * of them alive.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import type { ChangeEvent, ChangeListener, FirewallApi } from '../../../src/service/api.js';
import { EventBuffer, MAX_BUFFERED_BYTES } from '../../../src/transport/http/events.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function feed(): { service: FirewallApi; publish: (e: ChangeEvent) => void } {
  let listener: ChangeListener = () => {};
  const service = {
    subscribe: (l: ChangeListener) => {
      listener = l;
      return () => {};
    },
  } as unknown as FirewallApi;
  return { service, publish: (e) => listener(e) };
}

const event = (revision: number, texts: readonly string[]): ChangeEvent => ({
  revision,
  origin: 'external',
  time: '2026-11-29T00:00:00.000Z',
  changes: texts.map((text, i) => ({
    type: 'rule.deleted' as const,
    family: 'ipv4' as const,
    table: 'filter' as const,
    chain: 'KUBE-SVC-ABCDEFGHIJKLMNOP',
    position: i + 1,
    id: '0123456789abcdef',
    text,
  })),
});

it('catches up from the frames it keeps, within its byte budget, and says when it cannot', () => {
  const { service, publish } = feed();
  const buffer = new EventBuffer(service);
  const big = Array.from(
    { length: 5000 },
    (_, i) => `-s 10.0.${i >> 8}.${i & 255}/32 -m comment --comment "x" -j DROP`,
  );
  let revision = 0;
  for (let i = 0; i < 60; i++) publish(event(++revision, big));
  const kept = buffer.since(0, revision);
  expect(kept).toBeUndefined(); // the first events are gone: the client re-reads
  const recent = buffer.since(revision - 2, revision) ?? [];
  expect(recent.map((f) => Number(/^id: (\d+)/.exec(f)?.[1]))).toEqual([revision - 1, revision]);
  expect(JSON.parse(/\ndata: (.*)\n/.exec(recent[1] as string)?.[1] ?? '')).toEqual(event(revision, big));
  expect(buffer.bytes).toBeLessThanOrEqual(MAX_BUFFERED_BYTES);
  expect(buffer.bytes).toBeGreaterThan(MAX_BUFFERED_BYTES / 2);
  // Small events: at most 1,000 of them.
  for (let i = 0; i < 1500; i++) publish(event(++revision, ['-j ACCEPT']));
  expect(buffer.size).toBe(1000);
  expect(buffer.since(revision - 1000, revision)).toHaveLength(1000);
  expect(buffer.since(revision - 1001, revision)).toBeUndefined();
});

it('keeps no event: what it keeps cannot hold a cut of the text a change came from', async () => {
  const { service, publish } = feed();
  const buffer = new EventBuffer(service);
  // The changes' texts are cuts of a larger text, as the model's are of a save.
  const save = Array.from(
    { length: 1000 },
    (_, i) => `-A INPUT -s 10.0.${i >> 8}.${i & 255}/32 -j DROP`,
  ).join('\n');
  const published = (() => {
    const e = event(1, [save.slice(9, 40), save.slice(500, 530)]);
    publish(e);
    return new WeakRef(e);
  })();
  for (let i = 0; i < 10 && published.deref() !== undefined; i++) {
    await new Promise((r) => setTimeout(r, 10));
    gc();
  }
  expect(published.deref()).toBeUndefined();
  expect(JSON.parse(/\ndata: (.*)\n/.exec(buffer.since(0, 1)?.[0] ?? '')?.[1] ?? '').changes[1].text).toBe(
    save.slice(500, 530),
  );
});
