/**
 * The SSH brute-force seed scenario (../shared/seeds/secure-server-with-iptables.txt) driven
 * through the gRPC front door onto a real kernel firewall in a network namespace of this
 * test: ipv4 as one Apply transaction of pasted iptables lines, ipv6 as single RPCs with one
 * typed rule. iptables-save must print exactly the seed fixture, and every rule text the
 * RPCs returned must be the line iptables-save prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import { FirewallService as Desc } from '../../../src/gen/portcullis/v1/firewall_service_pb.js';
import { Family as FamilyEnum } from '../../../src/gen/portcullis/v1/rule_pb.js';
import { createPromiseClient, type PromiseClient } from '../../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../../src/transport/grpc/server.js';
import { describeKernel } from '../../helpers/kernel.js';
import { expectModelMatchesKernel, useKernelService } from '../../helpers/kernel-service.js';
import { authenticator, bind, WRITE_TOKEN } from './helpers.js';

const w = { token: WRITE_TOKEN };
const spec = (value: string) => ({ kind: { case: 'spec' as const, value } });

/** The seed's rules as an operator pastes them (the article's dashes and quotes repaired). */
const INPUT_LINES = [
  '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --rsource',
  '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --rsource -j LOG_AND_DROP',
  '-p tcp -m tcp --dport 22 -j ACCEPT',
];
const LOG_LINE = '-j LOG --log-prefix "iptables deny: " --log-level 7';

/** A save without comment lines and counters, as lines. */
function normalize(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
}

function fixture(family: Family): string[] {
  return normalize(
    readFileSync(join(__dirname, '../../fixtures/seeds', `ssh-bruteforce.${family}.save`), 'utf8'),
  );
}

describeKernel('gRPC on the kernel: the SSH brute-force seed', () => {
  const k = useKernelService({ prefix: 'pgrpc' });
  let server: grpc.Server;
  let client: PromiseClient<typeof Desc>;
  beforeAll(async () => {
    server = createGrpcServer({ service: k().service, auth: authenticator, requireAuth: true });
    client = createPromiseClient(Desc, `127.0.0.1:${await bind(server)}`);
  });
  afterAll(() => {
    client?.close();
    server?.forceShutdown();
  });

  it('ipv4: one Apply transaction of pasted lines gives exactly the seed ruleset', async () => {
    const r = await client.apply(
      {
        operations: [
          { kind: { case: 'createChain', value: { family: FamilyEnum.IPV4, chain: 'LOG_AND_DROP' } } },
          ...INPUT_LINES.map((line) => ({
            kind: { case: 'appendRule' as const, value: { chain: 'INPUT', rule: spec(line) } },
          })),
          { kind: { case: 'appendRule', value: { chain: 'LOG_AND_DROP', rule: spec(LOG_LINE) } } },
          { kind: { case: 'appendRule', value: { chain: 'LOG_AND_DROP', rule: spec('-j DROP') } } },
        ],
      },
      w,
    );
    const saved = normalize(await k().save('ipv4'));
    expect(saved).toEqual(fixture('ipv4'));
    for (const res of r.results.slice(1)) {
      expect(saved.some((l) => l.endsWith(` ${res.rule?.text}`))).toBe(true);
    }
    expect(r.results[1]?.rule?.text).toBe(
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource',
    );
    await expectModelMatchesKernel(k(), ['ipv4']);
  });

  it('ipv6: single RPCs (one rule typed) give exactly the seed ruleset, read back typed', async () => {
    const six = { family: FamilyEnum.IPV6 };
    await client.createChain({ ...six, chain: 'LOG_AND_DROP' }, w);
    for (const line of INPUT_LINES.slice(0, 2))
      await client.appendRule({ ...six, chain: 'INPUT', rule: spec(line) }, w);
    const typed = await client.appendRule(
      {
        ...six,
        chain: 'INPUT',
        rule: {
          kind: {
            case: 'rule',
            value: {
              protocol: 'tcp',
              matches: [{ module: 'tcp', options: { dport: '22' } }],
              target: { kind: { case: 'jump', value: 'ACCEPT' } },
            },
          },
        },
      },
      w,
    );
    expect(typed.rule?.text).toBe('-p tcp -m tcp --dport 22 -j ACCEPT');
    await client.appendRule({ ...six, chain: 'LOG_AND_DROP', rule: spec(LOG_LINE) }, w);
    await client.appendRule({ ...six, chain: 'LOG_AND_DROP', rule: spec('-j DROP') }, w);
    expect(normalize(await k().save('ipv6'))).toEqual(fixture('ipv6'));

    const chain = await client.getChain({ ...six, chain: 'INPUT', counters: true }, w);
    const texts = chain.chain?.rules.map((r) => r.text);
    expect(texts).toEqual(await k().kernelRules('ipv6', 'INPUT'));
    const recent = chain.chain?.rules[1]?.rule?.matches.find((m) => m.module === 'recent');
    expect(recent?.options).toMatchObject({ action: 'update', seconds: 60, hitcount: 4, name: 'DEFAULT' });
    expect(chain.chain?.rules[0]?.counters).toBeDefined();
    await expectModelMatchesKernel(k(), ['ipv6']);
  });
});
