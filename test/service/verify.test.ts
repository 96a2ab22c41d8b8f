/**
 * verify(): the model compared with a fresh read of the kernel, each difference
 * reported, published as an event, and the model re-read.
 */
import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../src/service/events.js';
import { filter, startSeeded } from '../helpers/service.js';

describe('verify', () => {
  it('reports a model equal to the kernel as consistent', async () => {
    const { service } = await startSeeded(['ipv4']);
    const r = await service.verify();
    expect(r).toMatchObject({ consistent: true, differences: [], revision: 1 });
    expect(service.status().lastVerify).toMatchObject({ consistent: true, differences: 0 });
  });

  it('names every difference, emits ruleset.diverged, and re-reads the kernel', async () => {
    const { fake, service } = await startSeeded(['ipv4']);
    const events: ChangeEvent[] = [];
    service.subscribe((e) => events.push(e));
    // Another process changes the kernel; without a feed the model does not know yet.
    await fake.restore(
      'ipv4',
      filter('-P FORWARD DROP', '-A INPUT -p udp -m udp --dport 53 -j ACCEPT', '-N NEW'),
      {
        noflush: true,
      },
    );
    await fake.restore('ipv4', filter('-D LOG_AND_DROP -j DROP', '-A LOG_AND_DROP -j DROP'), {
      noflush: true,
    });
    const r = await service.verify();
    expect(r.consistent).toBe(false);
    expect(r.differences).toEqual(
      expect.arrayContaining([
        {
          family: 'ipv4',
          table: 'filter',
          chain: 'FORWARD',
          kind: 'policy',
          modelPolicy: 'ACCEPT',
          kernelPolicy: 'DROP',
        },
        {
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          kind: 'rules',
          onlyInModel: [],
          onlyInKernel: ['-p udp -m udp --dport 53 -j ACCEPT'],
        },
        { family: 'ipv4', table: 'filter', chain: 'NEW', kind: 'chain-only-in-kernel' },
      ]),
    );
    expect(r.differences).toHaveLength(3);
    expect(events[0]?.client).toBe('verify');
    expect(events[0]?.changes.map((c) => `${c.type} ${c.chain} ${c.detail}`)).toEqual(
      expect.arrayContaining(['ruleset.diverged FORWARD policy', 'ruleset.diverged INPUT rules']),
    );
    // The re-read it asked for makes the model true again.
    await service.reload();
    expect((await service.verify()).consistent).toBe(true);
  });

  it('tells a different order from different rules', async () => {
    const { fake, service } = await startSeeded(['ipv4']);
    await fake.restore('ipv4', filter('-D INPUT -i lo -j ACCEPT', '-A INPUT -i lo -j ACCEPT'), {
      noflush: true,
    });
    const r = await service.verify();
    expect(r.differences).toEqual([{ family: 'ipv4', table: 'filter', chain: 'INPUT', kind: 'order' }]);
  });
});
