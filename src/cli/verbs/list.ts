/**
 * -L and -S: the table as the API gives it, handed to the iptables-format renderers
 * (format/list.ts, format/specs.ts) in iptables' chain order (built-ins in hook order,
 * then user chains by strcmp, as nft_cache_sort_chains does) with each chain's references
 * counted from the table's jumps and gotos. With -v the counters are read live, chain by
 * chain (`?counters=true`). `--json` prints the chains with the API's own fields.
 */
import { call, type Schemas } from '../api.js';
import type { IptablesCommand } from '../argv.js';
import { EXIT } from '../errors.js';
import { renderList } from '../format/list.js';
import type { ListChain } from '../format/list-types.js';
import { renderSpecs } from '../format/specs.js';
import { styleFor } from '../format/style.js';
import { type Context, printJson } from './context.js';

const HOOKS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

/** iptables' listing order: built-in chains by hook, then user chains by byte order of name. */
export function listingOrder(chains: readonly Schemas['ChainView'][]): Schemas['ChainView'][] {
  const rank = (c: Schemas['ChainView']) => (c.builtin ? HOOKS.indexOf(c.name) : HOOKS.length);
  return [...chains].sort((a, b) => {
    const d = rank(a) - rank(b);
    if (d !== 0) return d;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/** How many rules of the table jump or go to each chain. */
export function references(chains: readonly Schemas['ChainView'][]): Map<string, number> {
  const refs = new Map<string, number>();
  for (const chain of chains) {
    for (const r of chain.rules) {
      const to = r.rule.target?.jump ?? r.rule.target?.goto;
      if (to !== undefined) refs.set(to, (refs.get(to) ?? 0) + 1);
    }
  }
  return refs;
}

async function readChains(ctx: Context, cmd: IptablesCommand, counters: boolean) {
  const { family } = ctx.common;
  const table = await call(
    ctx.connection,
    ctx.api.GET('/v1/tables/{table}', { params: { path: { table: cmd.table }, query: { family } } }),
  );
  const refs = references(table.chains);
  let chains = listingOrder(table.chains);
  if (cmd.chain !== undefined) {
    // One chain: the service says when it does not exist (and reads its counters).
    const one = await call(
      ctx.connection,
      ctx.api.GET('/v1/tables/{table}/chains/{chain}', {
        params: { path: { table: cmd.table, chain: cmd.chain }, query: { family, counters } },
      }),
    );
    chains = [one.chain];
  } else if (counters) {
    chains = await Promise.all(
      chains.map(async (c) => {
        const live = await call(
          ctx.connection,
          ctx.api.GET('/v1/tables/{table}/chains/{chain}', {
            params: { path: { table: cmd.table, chain: c.name }, query: { family, counters: true } },
          }),
        );
        return live.chain;
      }),
    );
  }
  return { revision: table.revision, chains, refs };
}

function toListChain(c: Schemas['ChainView'], refs: ReadonlyMap<string, number>): ListChain {
  return {
    name: c.name,
    builtin: c.builtin,
    ...(c.policy === undefined ? {} : { policy: c.policy }),
    ...(c.counters === undefined ? {} : { counters: c.counters }),
    references: refs.get(c.name) ?? 0,
    rules: c.rules.map((r) => ({
      text: r.text,
      ...(r.counters === undefined ? {} : { counters: r.counters }),
    })),
  };
}

/** Reads the chains -L / -S show and prints them with `render`, or as JSON. */
async function show(
  ctx: Context,
  cmd: IptablesCommand,
  render: (chains: ListChain[]) => string,
): Promise<number> {
  const { revision, chains, refs } = await readChains(ctx, cmd, cmd.verbose);
  if (ctx.common.json) printJson(ctx, { revision, family: ctx.common.family, table: cmd.table, chains });
  else ctx.io.stdout.write(render(chains.map((c) => toListChain(c, refs))));
  return EXIT.ok;
}

const position = (cmd: IptablesCommand) => (cmd.position === undefined ? {} : { position: cmd.position });

export function list(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const format = {
    family: ctx.common.family,
    numeric: cmd.numeric,
    verbose: cmd.verbose,
    exact: cmd.exact,
    lineNumbers: cmd.lineNumbers,
    ...position(cmd),
  };
  return show(ctx, cmd, (chains) => renderList(chains, format, styleFor(ctx.io.stdout, ctx.io.env)));
}

export function listRules(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const format = { verbose: cmd.verbose, oneChain: cmd.chain !== undefined, ...position(cmd) };
  return show(ctx, cmd, (chains) => renderSpecs(chains, format));
}
