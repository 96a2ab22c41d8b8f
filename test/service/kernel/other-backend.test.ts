/**
 * Rules in the other iptables backend: with iptables-legacy tables next to the
 * nf_tables ones (a host where Docker or an old tool uses the other backend),
 * the kernel filters packets through both. The service must say so at start
 * and when it changes (status, readiness, event) and show those rules read
 * only, so that nothing reasoning over the model believes it is all there is.
 */
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openKernel } from '../../../src/exec/kernel.js';
import type { ChangeEvent } from '../../../src/service/events.js';
import { FirewallService } from '../../../src/service/firewall-service.js';
import { Authenticator } from '../../../src/transport/auth.js';
import { createApp } from '../../../src/transport/http/app.js';
import { describeKernel, useNetns } from '../../helpers/kernel.js';
import { waitFor } from '../../helpers/kernel-service.js';
import { checked } from '../../transport/http/helpers.js';

describeKernel('the other iptables backend', () => {
  const ns = useNetns('pother');
  let service: FirewallService;
  const events: ChangeEvent[] = [];

  const legacy = async (argv: string[]) => {
    const r = await ns().exec(['iptables-legacy', '-w', ...argv]);
    if (r.code !== 0) throw new Error(`iptables-legacy ${argv.join(' ')}: ${r.stderr}`);
  };

  beforeAll(async () => {
    await legacy(['-A', 'INPUT', '-s', '192.0.2.9/32', '-j', 'DROP']);
    const kernel = await openKernel({ netns: ns().name });
    expect(kernel.backend.backend).toBe('nf_tables');
    expect(kernel.other?.backend).toBe('legacy');
    service = new FirewallService({
      executor: kernel.executor,
      ...(kernel.feed ? { feed: kernel.feed } : {}),
      ...(kernel.handles ? { handles: kernel.handles } : {}),
      pollIntervalMs: 200,
      ...(kernel.other ? { otherBackend: kernel.other } : {}),
    });
    await service.start();
    service.subscribe((e) => events.push(e));
  });
  afterAll(async () => {
    await service?.close();
  });

  it('is reported at start: status, readiness, and its rules read only', async () => {
    expect(service.status().otherBackend).toEqual({
      backend: 'legacy',
      filtering: true,
      tables: [{ family: 'ipv4', table: 'filter', rules: 1, dropPolicies: [] }],
    });
    expect(service.getOtherRuleset('ipv4')?.tables[0]?.chains[0]?.rules).toHaveLength(1);
    expect(service.getRulesetText('ipv4').text).not.toContain('192.0.2.9');
    const app = createApp({ service, auth: new Authenticator([]), requireAuth: false });
    const ready = await request(app).get('/readyz');
    expect(ready.body.detail).toMatch(/legacy iptables backend also filter packets \(ipv4\/filter\)/);
    const other = checked(await request(app).get('/v1/ruleset?backend=other').set('accept', 'text/plain'));
    expect(other.text).toContain('-A INPUT -s 192.0.2.9/32 -j DROP');
    checked(await request(app).get('/v1/ruleset?family=ipv6&backend=other').expect(404));
    const status = checked(await request(app).get('/v1/status'));
    expect(status.body.otherBackend.tables).toHaveLength(1);
  });

  it('a change there is noticed and announced as backend.mixed', async () => {
    await legacy(['-P', 'FORWARD', 'DROP']);
    const event = await waitFor(
      'a backend.mixed event',
      () =>
        events.find((e) =>
          e.changes.some((c) => c.type === 'backend.mixed' && /FORWARD/.test(c.detail ?? '')),
        ),
      10_000,
    );
    expect(event.client).toBe('other-backend');
    expect(service.status().otherBackend?.tables[0]?.dropPolicies).toEqual(['FORWARD']);
  });
});
