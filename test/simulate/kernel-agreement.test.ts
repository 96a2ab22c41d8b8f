/**
 * Kernel agreement: the simulator's definite answers against the real
 * kernel. Seeded random rulesets (mangle and filter, both families) are
 * loaded into a server namespace of our own; real packets are sent from a
 * client namespace over veth pairs (TCP SYN, UDP, ICMP echo, the UDP reply of
 * an ESTABLISHED flow, an ICMP error RELATED to one); after each packet the
 * counters of every rule and policy are read and compared with the rules the
 * simulator says matched, and "delivered" with its verdict. Any difference
 * fails the test and prints the seed, ruleset and packet.
 *
 * PORTCULLIS_SIM_SEED and PORTCULLIS_SIM_PAIRS choose the seed (default 1)
 * and how many packet/ruleset pairs to check (default 1000).
 * Safety: every iptables call runs in the lab's own namespace (lab.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import type { Ruleset } from '../../src/domain/model.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { normalizePacket, type Outcome, tracePacket } from '../../src/simulate/index.js';
import { describeKernel } from '../helpers/kernel.js';
import { Dice, makeProbe, makeRuleset, Ports, type Probe, probePacket, rng } from './kernel/generate.js';
import { Lab, type Observation } from './kernel/lab.js';

const SEED = Number(process.env.PORTCULLIS_SIM_SEED ?? '1');
const PAIRS = Number(process.env.PORTCULLIS_SIM_PAIRS ?? '1000');
const PROBES_PER_RULESET = 5;
/** Packets the harness failed to deliver to the lab (not disagreements), tolerated up to this share. */
const MAX_LOST_SHARE = 0.02;

type Counts = Map<string, number>;

/** Counters of INPUT (mangle, filter) and the user chains, as deltas between two observations. */
function deltas(before: Ruleset, after: Ruleset): Counts {
  const out: Counts = new Map();
  for (const table of after.tables) {
    if (table.name !== 'mangle' && table.name !== 'filter') continue;
    const old = before.tables.find((t) => t.name === table.name);
    for (const chain of table.chains) {
      if (chain.name !== 'INPUT' && !/^U\d$/.test(chain.name)) continue;
      const prev = old?.chains.find((c) => c.name === chain.name);
      chain.rules.forEach((rule, i) => {
        const d = Number((rule.counters?.packets ?? 0n) - (prev?.rules[i]?.counters?.packets ?? 0n));
        if (d) out.set(`${table.name} ${chain.name} #${i + 1}`, d);
      });
      const p = Number((chain.counters?.packets ?? 0n) - (prev?.counters?.packets ?? 0n));
      if (p && chain.policy) out.set(`${table.name} ${chain.name} policy`, p);
    }
  }
  return out;
}

/** The counters the simulator's path says must move. */
function expected(o: Outcome): Counts {
  const out: Counts = new Map();
  const add = (k: string) => out.set(k, (out.get(k) ?? 0) + 1);
  for (const s of o.path) {
    if (s.kind === 'rule' && s.matched === 'yes') add(`${s.table} ${s.chain} #${s.position}`);
    if (s.kind === 'policy') add(`${s.table} ${s.chain} policy`);
  }
  return out;
}

const show = (c: Counts) => JSON.stringify([...c.entries()].sort());

async function send(lab: Lab, p: Probe): Promise<void> {
  const c = lab.clientAgent;
  switch (p.kind) {
    case 'tcp':
      return c.request({ cmd: 'tcp', src: p.src, sport: p.sport, dst: p.dst, dport: p.dport });
    case 'udp':
      return c.request({
        cmd: 'udp',
        src: p.src,
        sport: p.sport,
        dst: p.dst,
        dport: p.dport,
        size: p.size,
        ttl: p.ttl,
      });
    case 'ping':
      return c.request({ cmd: 'ping', family: p.family, src: p.src, dst: p.dst, size: p.size, ttl: p.ttl });
    case 'established':
      await c.request({ cmd: 'echo', addr: p.src, port: p.sport, size: p.size, ttl: p.ttl });
      return lab.serverAgent.request({
        cmd: 'send',
        src: p.dst,
        sport: p.dport,
        dst: p.src,
        dport: p.sport,
        size: 8,
      });
    case 'related':
      return lab.serverAgent.request({
        cmd: 'send',
        src: p.dst,
        sport: p.dport,
        dst: p.src,
        dport: p.sport,
        size: p.size,
      });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads counters until the packet has arrived (bounded); undefined if it never did. */
async function waitArrival(lab: Lab, family: Family, before: Observation): Promise<Observation | undefined> {
  for (let i = 0; i < 60; i++) {
    const now = await lab.observe(family);
    if (now.arrived > before.arrived) return now.arrived === before.arrived + 1n ? now : undefined;
    await sleep(i < 5 ? 2 : 25);
  }
  return undefined;
}

interface Stats {
  pairs: number;
  definite: number;
  maybe: number;
  pathsCompared: number;
  lost: number;
  rulesets: number;
  tested: number;
  matched: number;
  readonly verdicts: Map<string, number>;
  readonly disagreements: string[];
}

interface Round {
  readonly index: number;
  readonly family: Family;
  readonly text: string;
  readonly model: Ruleset;
}

/** Sends one probe and compares the kernel's counters with the simulator's answer. */
async function checkProbe(lab: Lab, round: Round, probe: Probe, before: Observation, stats: Stats) {
  const packet = probePacket(probe);
  await send(lab, probe);
  let after = await waitArrival(lab, round.family, before);
  stats.pairs++;
  if (!after) {
    stats.lost++;
    await sleep(100);
    return lab.observe(round.family);
  }
  const result = tracePacket(round.model, normalizePacket(packet));
  if (!result.definite) {
    stats.maybe++;
    return after;
  }
  stats.definite++;
  stats.verdicts.set(result.verdict, (stats.verdicts.get(result.verdict) ?? 0) + 1);
  const only = result.outcomes.length === 1 ? (result.outcomes[0] as Outcome) : undefined;
  const compare = (obs: Observation): string | undefined => {
    const delivered = obs.delivered > before.delivered;
    if (delivered !== (result.verdict === 'ACCEPT'))
      return `verdict ${result.verdict}, but the kernel ${delivered ? 'delivered' : 'did not deliver'} the packet`;
    if (!only) return undefined;
    const want = show(expected(only));
    const got = show(deltas(before.ruleset, obs.ruleset));
    return want === got ? undefined : `counters: simulator ${want}, kernel ${got}`;
  };
  let problem = compare(after);
  if (problem) {
    // Counters of one packet are read while it may still be on its way: read once more.
    await sleep(50);
    after = await lab.observe(round.family);
    problem = compare(after);
  }
  if (only) {
    stats.pathsCompared++;
    for (const s of only.path) {
      if (s.kind !== 'rule') continue;
      stats.tested++;
      if (s.matched === 'yes') stats.matched++;
    }
  }
  if (problem) {
    stats.disagreements.push(
      [
        `DISAGREEMENT (seed ${SEED}, round ${round.index}, ${round.family}): ${problem}`,
        `packet: ${JSON.stringify(packet)}`,
        `probe: ${JSON.stringify({ ...probe, link: probe.link.server })}`,
        'ruleset:',
        round.text,
      ].join('\n'),
    );
  }
  return after;
}

/** Rounds of one ruleset per family and PROBES_PER_RULESET packets each, until PAIRS pairs. */
async function runAgreement(lab: Lab): Promise<Stats> {
  const d = new Dice(rng(SEED));
  const ports = new Ports(d);
  const stats: Stats = {
    pairs: 0,
    definite: 0,
    maybe: 0,
    pathsCompared: 0,
    lost: 0,
    rulesets: 0,
    tested: 0,
    matched: 0,
    verdicts: new Map(),
    disagreements: [],
  };
  for (let index = 0; stats.pairs < PAIRS && index < PAIRS; index++) {
    const rounds = (['ipv4', 'ipv6'] as const).map((family) => {
      const probes = Array.from({ length: PROBES_PER_RULESET }, () => makeProbe(d, family, ports));
      const text = makeRuleset(d, family, probes);
      return { round: { index, family, text, model: parseSave(text, family) }, probes };
    });
    await Promise.all(rounds.map((r) => lab.load(r.round.family, r.round.text)));
    stats.rulesets += rounds.length;
    const last = new Map<Family, Observation>();
    for (const r of rounds) last.set(r.round.family, await lab.observe(r.round.family));
    for (let i = 0; i < PROBES_PER_RULESET && stats.pairs < PAIRS; i++) {
      for (const r of rounds) {
        const before = last.get(r.round.family) as Observation;
        last.set(r.round.family, await checkProbe(lab, r.round, r.probes[i] as Probe, before, stats));
      }
    }
  }
  return stats;
}

describeKernel('simulator agrees with the kernel', () => {
  let lab: Lab | undefined;
  beforeAll(async () => {
    lab = await Lab.create();
  }, 60_000);
  afterAll(async () => {
    await lab?.destroy();
  }, 60_000);

  const title = `gives the kernel's answer for ${PAIRS} random ruleset/packet pairs (seed ${SEED})`;
  const timeout = Math.max(240_000, PAIRS * 120);
  it(
    title,
    async () => {
      if (!lab) throw new Error('the lab was not built');
      const started = Date.now();
      const stats = await runAgreement(lab);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `[kernel agreement] seed ${SEED}: ${stats.pairs} pairs over ${stats.rulesets} rulesets in ${seconds} s; ` +
          `${stats.definite} definite (${stats.pathsCompared} with the full path compared), ${stats.maybe} maybe, ` +
          `${stats.lost} lost by the harness, ${stats.disagreements.length} disagreements; ` +
          `verdicts ${show(stats.verdicts)}; ${stats.tested} rule evaluations compared (${stats.matched} matched)`,
      );
      for (const msg of stats.disagreements.slice(0, 5)) console.log(msg);
      expect(stats.disagreements).toEqual([]);
      expect(stats.lost).toBeLessThanOrEqual(Math.ceil(stats.pairs * MAX_LOST_SHARE));
      expect(stats.definite).toBeGreaterThan(stats.pairs / 2);
    },
    timeout,
  );
});
