/**
 * External changes on a real kernel: another process (`iptables` run in the namespace) changes
 * the ruleset; the service notices within a bounded wait — at once through the nft feed, or on
 * its next poll without nft — emits an `external` event with a new revision, and its model then
 * equals the kernel. The rule the other process added is then addressable through the service.
 */
import { describe, expect, it } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import type { ChangeEvent } from '../../../src/service/events.js';
import { describeKernel } from '../../helpers/kernel.js';
import { expectModelMatchesKernel, useKernelService, waitFor } from '../../helpers/kernel-service.js';
import { host } from '../../helpers/service.js';

function externalSuite(name: string, useNft: boolean): void {
  describe(name, () => {
    const k = useKernelService({ useNft, pollIntervalMs: 200, prefix: useNft ? 'pext' : 'pextp' });

    it.each(['ipv4', 'ipv6'] as const)('an external iptables -I is noticed (%s)', async (family: Family) => {
      const { service } = k();
      expect(service.status().watch).toBe(useNft ? 'nft-monitor' : 'poll');
      await service.apply([
        { op: 'append', family, table: 'filter', chain: 'INPUT', rule: { spec: '-p udp -j DROP' } },
      ]);
      const events: ChangeEvent[] = [];
      const off = service.subscribe((e) => events.push(e));
      try {
        const revision = service.revision;
        const { addr, canonical } = host(family, 77);
        const text = `-s ${canonical} -j ACCEPT`;
        await k().iptables(family, ['-I', 'INPUT', '1', '-s', addr, '-j', 'ACCEPT']);
        const event = await waitFor('an external event', () =>
          events.find((e) => e.origin === 'external' && e.changes.some((c) => c.text === text)),
        );
        expect(event.revision).toBeGreaterThan(revision);
        expect(event.changes).toContainEqual(
          expect.objectContaining({
            type: 'rule.added',
            family,
            table: 'filter',
            chain: 'INPUT',
            position: 1,
            text,
          }),
        );
        expect(service.status().lastExternalChange).toBeDefined();
        await expectModelMatchesKernel(k());
        // The external rule is now addressable through the service, and its delete lands in the kernel.
        const read = await service.getChain(family, 'filter', 'INPUT');
        expect(read.chain.rules.map((r) => r.text)).toEqual([text, '-p udp -j DROP']);
        await service.apply([
          {
            op: 'delete',
            family,
            table: 'filter',
            chain: 'INPUT',
            target: { id: read.chain.rules[0]?.id as string },
          },
        ]);
        expect(await k().kernelRules(family, 'INPUT')).toEqual(['-p udp -j DROP']);
        // An external delete and policy change are noticed too.
        const before = service.revision;
        await k().iptables(family, ['-D', 'INPUT', '-p', 'udp', '-j', 'DROP']);
        await k().iptables(family, ['-P', 'FORWARD', 'DROP']);
        await waitFor('the model to follow the kernel', () =>
          service
            .getTable(family, 'filter')
            .chains.some((c) => c.name === 'FORWARD' && c.policy === 'DROP') &&
          service.getRuleset(family).ruleset.tables.every((t) => t.chains.every((c) => c.rules.length === 0))
            ? true
            : undefined,
        );
        expect(service.revision).toBeGreaterThan(before);
        expect(events.filter((e) => e.origin === 'external').flatMap((e) => e.changes)).toContainEqual(
          expect.objectContaining({ type: 'policy.set', family, chain: 'FORWARD', policy: 'DROP' }),
        );
        await expectModelMatchesKernel(k());
      } finally {
        off();
      }
    });
  });
}

describeKernel('FirewallService external changes on the kernel', () => {
  externalSuite('with the nft feed', true);
  externalSuite('without nft (polling)', false);
});
