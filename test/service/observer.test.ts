/**
 * The observer hooks (observer.ts): what metrics, persistence and the audit log are told.
 */
import { describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import type { CommitRecord, ServiceObserver } from '../../src/service/observer.js';

function recorder() {
  const seen = {
    kernel: [] as Parameters<NonNullable<ServiceObserver['kernel']>>[0][],
    batch: [] as number[],
    job: [] as string[],
    committed: [] as (readonly CommitRecord[])[],
    reread: [] as string[],
  };
  const observer: ServiceObserver = {
    kernel: (e) => seen.kernel.push(e),
    batch: (e) => seen.batch.push(e.jobs),
    job: (e) => seen.job.push(e.outcome),
    committed: (r) => seen.committed.push(r),
    reread: (e) => seen.reread.push(`${e.reason}:${e.changed}`),
  };
  return { seen, observer };
}

describe('the service observer', () => {
  it('hears kernel transactions, batches, job outcomes and one commit record per changing job', async () => {
    const { seen, observer } = recorder();
    const service = new FirewallService({ executor: new FakeExecutor(), pollIntervalMs: 0, observer });
    await service.start();
    await Promise.allSettled([
      service.apply(
        [{ op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: '-j ACCEPT' } }],
        { origin: 'rest', identity: 'admin', requestId: 'req-1' },
      ),
      service.apply([{ op: 'deleteChain', family: 'ipv4', table: 'filter', chain: 'NOPE' }], {
        origin: 'grpc',
      }),
    ]);
    expect(seen.job.sort()).toEqual(['not_found', 'ok']);
    expect(seen.batch).toEqual([1]);
    expect(seen.kernel).toMatchObject([{ family: 'ipv4', kind: 'restore', tables: ['filter'], ok: true }]);
    expect(seen.committed).toHaveLength(1);
    expect(seen.committed[0]).toEqual([
      expect.objectContaining({
        revisionBefore: 1,
        revisionAfter: 2,
        origin: 'rest',
        identity: 'admin',
        requestId: 'req-1',
        operations: ['append'],
        restore: [{ family: 'ipv4', text: '*filter\n-A INPUT -j ACCEPT\nCOMMIT\n' }],
      }),
    ]);
    await service.reload();
    expect(seen.reread).toEqual(['demand:false']);
    await service.close();
  });

  it('a throwing observer never fails a change', async () => {
    const service = new FirewallService({
      executor: new FakeExecutor(),
      pollIntervalMs: 0,
      observer: {
        committed: () => {
          throw new Error('disk full');
        },
      },
    });
    await service.start();
    const r = await service.apply([{ op: 'createChain', family: 'ipv4', table: 'filter', chain: 'X' }]);
    expect(r.revision).toBe(2);
    await service.close();
  });
});
