/**
 * Every FirewallService RPC through a real grpc-js client on a loopback port,
 * against the service on the fake executor: the response, and what the
 * kernel (the fake) holds afterwards.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Family, Policy } from '../../../src/gen/portcullis/v1/rule_pb.js';
import { seedInput } from '../../helpers/service.js';
import { type GrpcFixture, kernelRules, startGrpc, WRITE_TOKEN } from './helpers.js';

const w = { token: WRITE_TOKEN };
const spec = (value: string) => ({ kind: { case: 'spec' as const, value } });

let f: GrpcFixture;
beforeEach(async () => {
  f = await startGrpc();
});
afterEach(async () => {
  await f.close();
});

describe('gRPC reads', () => {
  it('GetRuleset returns every table with rule ids, and iptables-save text on request', async () => {
    const r = await f.client.getRuleset({ family: Family.IPV6, includeText: true }, w);
    expect(r.revision).toBe(1n);
    expect(r.family).toBe(Family.IPV6);
    const filter = r.tables.find((t) => t.name === 'filter');
    const input = filter?.chains.find((c) => c.name === 'INPUT');
    expect(input?.rules.map((x) => x.text)).toEqual(seedInput('ipv6'));
    expect(input?.rules.map((x) => x.position)).toEqual([1, 2, 3]);
    expect(input?.rules.every((x) => /^[0-9a-f]+$/.test(x.id))).toBe(true);
    expect(r.text).toContain('-A INPUT -s 2001:db8::/32 -j DROP');
    expect((await f.client.getRuleset({}, w)).text).toBe('');
  });

  it('GetTable returns the chains with typed rules (FAMILY_UNSPECIFIED is ipv4, empty table is filter)', async () => {
    const r = await f.client.getTable({}, w);
    expect(r.chains.map((c) => [c.name, c.builtin, c.policy])).toEqual([
      ['INPUT', true, Policy.ACCEPT],
      ['FORWARD', true, Policy.ACCEPT],
      ['OUTPUT', true, Policy.ACCEPT],
      ['EMPTY', false, Policy.UNSPECIFIED],
      ['LOG_AND_DROP', false, Policy.UNSPECIFIED],
    ]);
    const ssh = r.chains[0]?.rules[1];
    expect(ssh?.text).toBe('-p tcp -m tcp --dport 22 -j LOG_AND_DROP');
    expect(ssh?.rule?.protocol).toBe('tcp');
    expect(ssh?.rule?.matches.map((m) => [m.module, m.options])).toEqual([['tcp', { dport: '22' }]]);
    expect(ssh?.rule?.target?.kind).toEqual({ case: 'jump', value: 'LOG_AND_DROP' });
    const lo = r.chains[0]?.rules[0];
    expect(lo?.rule?.inInterface).toBe('lo');
    expect(lo?.rule?.target?.kind.case).toBe('extension');
    expect(lo?.rule?.target?.kind.value).toMatchObject({ name: 'ACCEPT', raw: [] });
  });

  it('GetChain with counters returns uint64 counters read from the kernel', async () => {
    const plain = await f.client.getChain({ chain: 'INPUT' }, w);
    expect(plain.chain?.rules[0]?.counters).toBeUndefined();
    const r = await f.client.getChain({ chain: 'INPUT', counters: true }, w);
    expect(r.chain?.name).toBe('INPUT');
    expect(r.chain?.rules).toHaveLength(3);
    expect(r.chain?.rules[0]?.counters).toMatchObject({ packets: 0n, bytes: 0n });
  });

  it('GetRule finds a rule of the chain by id; another chain or an unknown id is NOT_FOUND (field id)', async () => {
    const ssh = (await f.client.getChain({ chain: 'INPUT' }, w)).chain?.rules[1];
    const id = ssh?.id ?? '';
    const r = await f.client.getRule({ chain: 'INPUT', id }, w);
    expect(r.revision).toBe(1n);
    expect(r.rule).toMatchObject({ id, position: 2, text: '-p tcp -m tcp --dport 22 -j LOG_AND_DROP' });
    for (const req of [
      { chain: 'LOG_AND_DROP', id },
      { chain: 'INPUT', id: '0000000000000000' },
    ]) {
      const err = (await f.client.getRule(req, w).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).toBe(5);
      expect(err.metadata.get('portcullis-field')).toEqual(['id']);
    }
  });

  it('ListChains returns rule counts and references', async () => {
    const r = await f.client.listChains({ family: Family.IPV4, table: 'filter' }, w);
    expect(r.chains.find((c) => c.name === 'LOG_AND_DROP')).toMatchObject({
      rules: 1,
      references: 1,
      builtin: false,
    });
    expect(r.chains.find((c) => c.name === 'INPUT')).toMatchObject({ rules: 3, policy: Policy.ACCEPT });
  });

  it('GetStatus reports revision, families and backend', async () => {
    const r = await f.client.getStatus({}, w);
    expect(r).toMatchObject({
      revision: 1n,
      ready: true,
      backend: 'nf_tables',
      backendVersion: '1.8.9',
      watch: 'none',
    });
    expect(r.families).toEqual([Family.IPV4, Family.IPV6]);
  });
});

describe('gRPC rule writes', () => {
  it('AppendRule takes a typed rule (Struct options) and returns id, position, text and the typed rule', async () => {
    const r = await f.client.appendRule(
      {
        chain: 'INPUT',
        rule: {
          kind: {
            case: 'rule',
            value: {
              protocol: 'tcp',
              source: '198.51.100.7',
              matches: [{ module: 'tcp', options: { dport: '443', invert: ['dport'] } }],
              target: { kind: { case: 'extension', value: { name: 'LOG', options: { prefix: 'web: ' } } } },
            },
          },
        },
      },
      w,
    );
    expect(r.revision).toBe(2n);
    expect(r.rule).toMatchObject({
      position: 4,
      text: '-s 198.51.100.7/32 -p tcp -m tcp ! --dport 443 -j LOG --log-prefix "web: "',
    });
    expect(r.rule?.rule?.source).toBe('198.51.100.7/32');
    expect(r.rule?.rule?.matches[0]?.options).toEqual({ dport: '443', invert: ['dport'] });
    expect(r.rule?.rule?.target?.kind.value).toMatchObject({ name: 'LOG', options: { prefix: 'web: ' } });
    expect(r.changes).toMatchObject([
      { type: 'rule.added', chain: 'INPUT', position: 4, family: Family.IPV4 },
    ]);
    expect((await kernelRules(f.fake, 'ipv4', 'INPUT'))[3]).toBe(r.rule?.text);
  });

  it('AppendRule takes a spec string, raw matches and goto', async () => {
    const r = await f.client.appendRule(
      { family: Family.IPV6, chain: 'INPUT', rule: spec('-p udp --dport 53 -g EMPTY') },
      w,
    );
    expect(r.rule?.text).toBe('-p udp -m udp --dport 53 -g EMPTY');
    expect(r.rule?.rule?.target?.kind).toEqual({ case: 'goto', value: 'EMPTY' });
    expect(await kernelRules(f.fake, 'ipv6', 'INPUT')).toContain('-p udp -m udp --dport 53 -g EMPTY');
  });

  it('InsertRule inserts at a position', async () => {
    const r = await f.client.insertRule({ chain: 'INPUT', position: 1, rule: spec('-p icmp -j ACCEPT') }, w);
    expect(r.rule).toMatchObject({ position: 1, text: '-p icmp -j ACCEPT' });
    expect((await kernelRules(f.fake, 'ipv4', 'INPUT'))[0]).toBe('-p icmp -j ACCEPT');
  });

  it('ReplaceRule replaces by position and returns the replaced rule', async () => {
    const r = await f.client.replaceRule(
      {
        chain: 'INPUT',
        target: { kind: { case: 'position', value: 3 } },
        rule: spec('-s 192.0.2.0/24 -j REJECT'),
      },
      w,
    );
    expect(r.rule?.text).toBe('-s 192.0.2.0/24 -j REJECT --reject-with icmp-port-unreachable');
    expect(r.replaced?.text).toBe(seedInput('ipv4')[2]);
    expect((await kernelRules(f.fake, 'ipv4', 'INPUT'))[2]).toBe(r.rule?.text);
  });

  it.each([
    [
      'id',
      async () => ({
        case: 'id' as const,
        value: (await f.client.getChain({ chain: 'INPUT' }, w)).chain?.rules[0]?.id ?? '',
      }),
    ],
    ['position', async () => ({ case: 'position' as const, value: 1 })],
    ['rule', async () => ({ case: 'rule' as const, value: spec('-i lo -j ACCEPT') })],
  ])('DeleteRule by %s', async (_how, target) => {
    const r = await f.client.deleteRule({ chain: 'INPUT', target: await target() }, w);
    expect(r.deleted?.text).toBe('-i lo -j ACCEPT');
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toEqual(seedInput('ipv4').slice(1));
  });

  it('EnsureRule adds once, then reports existed without a new revision', async () => {
    const a = await f.client.ensureRule({ chain: 'EMPTY', rule: spec('-j RETURN') }, w);
    expect(a).toMatchObject({ existed: false, revision: 2n });
    const b = await f.client.ensureRule({ chain: 'EMPTY', rule: spec('-j RETURN') }, w);
    expect(b).toMatchObject({ existed: true, revision: 2n, changes: [] });
    expect(b.rule?.id).toBe(a.rule?.id);
    expect(await kernelRules(f.fake, 'ipv4', 'EMPTY')).toEqual(['-j RETURN']);
  });
});

describe('gRPC chain writes', () => {
  it('CreateChain, RenameChain, FlushChain, DeleteChain (force)', async () => {
    await f.client.createChain({ chain: 'WEB' }, w);
    await f.client.appendRule({ chain: 'WEB', rule: spec('-p tcp --dport 80 -j ACCEPT') }, w);
    await f.client.appendRule({ chain: 'INPUT', rule: spec('-j WEB') }, w);
    const renamed = await f.client.renameChain({ chain: 'WEB', newName: 'HTTP' }, w);
    expect(renamed.changes).toMatchObject([{ type: 'chain.renamed', chain: 'WEB', newName: 'HTTP' }]);
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toContain('-j HTTP');
    const flushed = await f.client.flushChain({ chain: 'HTTP' }, w);
    expect(flushed.changes).toMatchObject([{ type: 'chain.flushed', chain: 'HTTP' }]);
    expect(await kernelRules(f.fake, 'ipv4', 'HTTP')).toEqual([]);
    const deleted = await f.client.deleteChain({ chain: 'HTTP', force: true }, w);
    expect(deleted.revision).toBe(7n);
    expect(await f.fake.save('ipv4')).not.toContain('HTTP');
  });

  it('SetPolicy sets a built-in policy', async () => {
    const r = await f.client.setPolicy({ chain: 'FORWARD', policy: Policy.DROP }, w);
    expect(r.changes).toMatchObject([{ type: 'policy.set', chain: 'FORWARD', policy: Policy.DROP }]);
    expect(await f.fake.save('ipv4')).toContain(':FORWARD DROP');
  });

  it('ZeroCounters zeroes a chain or a whole table', async () => {
    const one = await f.client.zeroCounters({ chain: 'INPUT' }, w);
    expect(one.changes).toMatchObject([{ type: 'counters.zeroed', chain: 'INPUT' }]);
    await expect(f.client.zeroCounters({ family: Family.IPV6 }, w)).resolves.toBeDefined();
  });

  it('ReplaceChain makes a chain hold exactly the given rules', async () => {
    await f.client.replaceChain(
      { chain: 'INPUT', rules: [spec('-i lo -j ACCEPT'), spec('-p tcp --dport 22 -j ACCEPT')] },
      w,
    );
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toEqual([
      '-i lo -j ACCEPT',
      '-p tcp -m tcp --dport 22 -j ACCEPT',
    ]);
  });

  it('ReplaceTable makes a table hold exactly the given chains', async () => {
    await f.client.replaceTable(
      {
        table: 'filter',
        chains: [
          { name: 'INPUT', policy: Policy.DROP, rules: [spec('-i lo -j ACCEPT'), spec('-j ALLOW')] },
          { name: 'ALLOW', rules: [spec('-p tcp --dport 22 -j ACCEPT')] },
        ],
      },
      w,
    );
    const text = await f.fake.save('ipv4');
    expect(text).toContain(':INPUT DROP');
    expect(text).not.toContain('LOG_AND_DROP');
    expect(await kernelRules(f.fake, 'ipv4', 'ALLOW')).toEqual(['-p tcp -m tcp --dport 22 -j ACCEPT']);
  });

  it('Reset empties one family, or all', async () => {
    await f.client.reset({ family: Family.IPV6 }, w);
    expect(await kernelRules(f.fake, 'ipv6', 'INPUT')).toEqual([]);
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toEqual(seedInput('ipv4'));
    await f.client.reset({}, w);
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toEqual([]);
  });
});

describe('gRPC transactions, revisions, idempotency, reload', () => {
  it('Apply runs operations all or nothing; dry_run returns restore text and touches nothing', async () => {
    const operations = [
      { kind: { case: 'createChain' as const, value: { chain: 'SSH' } } },
      { kind: { case: 'appendRule' as const, value: { chain: 'SSH', rule: spec('-j ACCEPT') } } },
      {
        kind: {
          case: 'insertRule' as const,
          value: { chain: 'INPUT', position: 1, rule: spec('-p tcp --dport 22 -j SSH') },
        },
      },
    ];
    const before = await f.fake.save('ipv4');
    const dry = await f.client.apply({ operations, dryRun: true }, w);
    expect(dry.dryRun).toBe(true);
    expect(dry.restoreText.ipv4).toContain('-I INPUT 1 -p tcp -m tcp --dport 22 -j SSH');
    expect(await f.fake.save('ipv4')).toBe(before);
    const r = await f.client.apply({ operations }, w);
    expect(r.results.map((x) => x.op)).toEqual(['createChain', 'append', 'insert']);
    expect(r.results[2]?.rule?.position).toBe(1);
    expect(r.revision).toBe(2n);
    expect(await kernelRules(f.fake, 'ipv4', 'SSH')).toEqual(['-j ACCEPT']);
    const bad = await f.client
      .apply(
        {
          operations: [
            { kind: { case: 'createChain', value: { chain: 'X1' } } },
            { kind: { case: 'flushChain', value: { chain: 'NOPE' } } },
          ],
        },
        w,
      )
      .catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: 5 });
    expect(await f.fake.save('ipv4')).not.toContain('X1');
  });

  it('expected_revision: a current revision applies, a stale one is FAILED_PRECONDITION', async () => {
    await f.client.createChain({ chain: 'A', expectedRevision: 1n }, w);
    const err = await f.client.createChain({ chain: 'B', expectedRevision: 1n }, w).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 9 });
    expect(await f.fake.save('ipv4')).not.toContain(':B ');
  });

  it('idempotency_key: a retry applies once and gets the first response; another request with the key is refused', async () => {
    const req = { chain: 'INPUT', rule: spec('-s 198.51.100.9 -j DROP'), idempotencyKey: 'ban-9' };
    const a = await f.client.appendRule(req, w);
    const b = await f.client.appendRule(req, w);
    expect(b).toEqual(a);
    expect(
      (await kernelRules(f.fake, 'ipv4', 'INPUT')).filter((r) => r.includes('198.51.100.9')),
    ).toHaveLength(1);
    const other = await f.client
      .appendRule({ ...req, rule: spec('-s 198.51.100.10 -j DROP') }, w)
      .catch((e: grpc.ServiceError) => e);
    expect(other).toMatchObject({ code: 3 });
    const md = (other as grpc.ServiceError).metadata;
    expect(md.get('portcullis-field')).toEqual(['idempotencyKey']);
    expect(md.get('portcullis-reason')).toEqual(['idempotency_key_reused']);
  });

  it('Reload re-reads the kernel and reports a change made behind the service', async () => {
    expect(await f.client.reload({}, w)).toMatchObject({ revision: 1n, changed: false });
    await f.fake.restore('ipv4', '*filter\n-A INPUT -s 198.51.100.1/32 -j DROP\nCOMMIT\n', { noflush: true });
    expect(await f.client.reload({}, w)).toMatchObject({ revision: 2n, changed: true });
  });
});
