/**
 * The -L and -S renderers (src/cli/format) against the kernel's own iptables: a corpus of
 * rules with counters (format-corpus.ts) is restored into a throwaway network namespace; the
 * chains are read back from `iptables-save -c` as the API would describe them (canonical text,
 * counters, policy, references); and every listing variant the CLI offers is compared byte for
 * byte with what `iptables` / `ip6tables` print for the same table and chain: `-L` with names
 * and with `-n`, `-v`, `-x`, `--line-numbers`, `-L CHAIN`, `-L CHAIN N`, `-S`, `-S -v`,
 * `-S CHAIN`, `-S CHAIN N -v`. No service is involved: this pins the renderers; the
 * command-line comparison through the service is another test's job.
 */
import { expect, it } from 'vitest';
import { type ListChain, renderList } from '../../src/cli/format/list.js';
import { systemNames } from '../../src/cli/format/names.js';
import { renderSpecs } from '../../src/cli/format/specs.js';
import type { Family } from '../../src/domain/family.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { IPV4_CORPUS, IPV6_CORPUS } from './format-corpus.js';

/** Chains of one table as the API gives them, from `iptables-save -c -t TABLE`. */
function chainsFromSave(save: string): ListChain[] {
  interface Chain {
    name: string;
    builtin: boolean;
    policy?: string;
    counters?: { packets: string; bytes: string };
    rules: { text: string; counters: { packets: string; bytes: string } }[];
  }
  const chains: Chain[] = [];
  for (const line of save.split('\n')) {
    const [, name, policy, packets, bytes] = /^:(\S+) (\S+) \[(\d+):(\d+)\]$/.exec(line) ?? [];
    if (name !== undefined && policy !== undefined && packets !== undefined && bytes !== undefined) {
      const builtin = policy !== '-';
      chains.push({ name, builtin, ...(builtin ? { policy, counters: { packets, bytes } } : {}), rules: [] });
      continue;
    }
    const [, p, b, chain, text] = /^\[(\d+):(\d+)\] -A (\S+)(?: (.*))?$/.exec(line) ?? [];
    if (p !== undefined && b !== undefined && chain !== undefined) {
      chains
        .find((c) => c.name === chain)
        ?.rules.push({ text: text ?? '', counters: { packets: p, bytes: b } });
    }
  }
  const refs = (name: string) =>
    chains.reduce(
      (n, c) => n + c.rules.filter((r) => new RegExp(`(^| )-[jg] ${name}( |$)`).test(r.text)).length,
      0,
    );
  const builtins = chains.filter((c) => c.builtin);
  const users = chains
    .filter((c) => !c.builtin)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [...builtins, ...users].map((c) => ({ ...c, references: refs(c.name) }));
}

interface Variant {
  readonly args: string[];
  readonly render: (chains: ListChain[], family: Family) => string;
}

const names = systemNames();

function listVariant(flags: { n?: boolean; v?: boolean; x?: boolean; line?: boolean }): Variant {
  const args = ['-L'];
  if (flags.n) args.push('-n');
  if (flags.v) args.push('-v');
  if (flags.x) args.push('-x');
  if (flags.line) args.push('--line-numbers');
  return {
    args,
    render: (chains, family) =>
      renderList(chains, {
        family,
        numeric: flags.n === true,
        verbose: flags.v === true,
        exact: flags.x === true,
        lineNumbers: flags.line === true,
        names,
      }),
  };
}

const TABLE_VARIANTS: readonly Variant[] = [
  listVariant({}),
  listVariant({ n: true }),
  listVariant({ v: true }),
  listVariant({ n: true, v: true }),
  listVariant({ n: true, v: true, x: true, line: true }),
  listVariant({ n: true, line: true }),
  { args: ['-S'], render: (chains) => renderSpecs(chains, { verbose: false, oneChain: false }) },
  { args: ['-S', '-v'], render: (chains) => renderSpecs(chains, { verbose: true, oneChain: false }) },
];

describeKernel('-L and -S renderers against iptables 1.8.9', () => {
  const ns = useNetns('pclifmt');

  for (const [family, corpus] of [
    ['ipv4', IPV4_CORPUS],
    ['ipv6', IPV6_CORPUS],
  ] as const) {
    const bin = family === 'ipv4' ? 'iptables' : 'ip6tables';
    const tables = [...corpus.matchAll(/^\*(\S+)$/gm)].flatMap((m) => (m[1] === undefined ? [] : [m[1]]));

    it(`${family}: renders every table as ${bin} -L / -S do, in every variant`, async () => {
      const restore = await ns().exec([`${bin}-restore`, '-c'], corpus);
      expect(restore.stderr).toBe('');
      expect(restore.code).toBe(0);
      let compared = 0;
      for (const table of tables) {
        const save = await ns().exec([`${bin}-save`, '-c', '-t', table]);
        const chains = chainsFromSave(save.stdout);
        expect(chains.length).toBeGreaterThan(0);
        for (const v of TABLE_VARIANTS) {
          const kernel = await ns().exec([bin, '-t', table, ...v.args]);
          expect(kernel.code, kernel.stderr).toBe(0);
          expect.soft(v.render(chains, family), `${bin} -t ${table} ${v.args.join(' ')}`).toBe(kernel.stdout);
          compared++;
        }
        for (const chain of chains) {
          const one = [chain];
          const list = await ns().exec([bin, '-t', table, '-L', chain.name, '-n', '-v']);
          expect(
            renderList(one, { family, numeric: true, verbose: true, exact: false, lineNumbers: false }),
            `${bin} -t ${table} -L ${chain.name} -n -v`,
          ).toBe(list.stdout);
          const specs = await ns().exec([bin, '-t', table, '-S', chain.name]);
          expect(
            renderSpecs(one, { verbose: false, oneChain: true }),
            `${bin} -t ${table} -S ${chain.name}`,
          ).toBe(specs.stdout);
          compared += 2;
          if (chain.rules.length >= 2) {
            const rule = await ns().exec([
              bin,
              '-t',
              table,
              '-L',
              chain.name,
              '2',
              '-n',
              '-v',
              '--line-numbers',
            ]);
            expect(
              renderList(one, {
                family,
                numeric: true,
                verbose: true,
                exact: false,
                lineNumbers: true,
                position: 2,
              }),
              `${bin} -t ${table} -L ${chain.name} 2 -n -v --line-numbers`,
            ).toBe(rule.stdout);
            const spec = await ns().exec([bin, '-t', table, '-S', chain.name, '2', '-v']);
            expect(renderSpecs(one, { verbose: true, oneChain: true, position: 2 })).toBe(spec.stdout);
            compared += 2;
          }
        }
      }
      expect(compared).toBeGreaterThan(tables.length * TABLE_VARIANTS.length);
    });
  }
});
