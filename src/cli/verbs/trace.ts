/**
 * `trace`: what the ruleset does to a packet described with iptables' own options
 * (`-p tcp -s 198.51.100.7 --dport 22`), through the service's simulator (POST /v1/trace):
 * the path, rule by rule, and the verdict. A field left out is unknown to the simulator,
 * which then answers "maybe" where it matters.
 */
import { call, type Schemas } from '../api.js';
import type { WordCommand } from '../argv.js';
import { EXIT, usage } from '../errors.js';
import { styleFor } from '../format/style.js';
import { renderTrace } from '../format/trace.js';
import { type Context, printJson } from './context.js';

type Packet = Schemas['TracePacket'];
const HOOKS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const;
const STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED'] as const;

function whole(text: string, option: string, max: number): number {
  if (!/^[0-9]+$/.test(text) || Number(text) > max)
    throw usage(`${option} must be a number from 0 to ${max}`);
  return Number(text);
}

/** The packet the options describe. */
export function packetFrom(cmd: WordCommand, family: Schemas['Family']): Packet {
  if (cmd.operands.length > 0)
    throw usage(`unexpected "${cmd.operands[0]}": describe the packet with options`);
  const get = (key: string): string | undefined => {
    const v = cmd.options.get(key);
    return typeof v === 'string' ? v : undefined;
  };
  const hookText = (get('hook') ?? 'INPUT').toUpperCase();
  const hook = HOOKS.find((h) => h === hookText);
  if (hook === undefined) throw usage(`--hook must be one of ${HOOKS.join(', ')}`);
  const stateText = get('ctState')?.toUpperCase();
  const ctState = stateText === undefined ? undefined : STATES.find((s) => s === stateText);
  if (stateText !== undefined && ctState === undefined)
    throw usage(`--state must be one of ${STATES.join(', ')}`);
  const protocol = get('protocol');
  const icmpType = get('icmpType');
  const flags = cmd.options.has('syn')
    ? ['SYN']
    : get('tcpFlags')
        ?.split(',')
        .filter((f) => f !== '');
  const sport = get('sourcePort');
  const dport = get('destinationPort');
  const length = get('length');
  const text = (key: 'source' | 'destination' | 'inInterface' | 'outInterface' | 'mark') => {
    const v = get(key);
    return v === undefined ? {} : { [key]: v };
  };
  return {
    family,
    hook,
    ...(protocol === undefined
      ? {}
      : { protocol: /^[0-9]+$/.test(protocol) ? whole(protocol, '-p', 255) : protocol }),
    ...text('source'),
    ...text('destination'),
    ...text('inInterface'),
    ...text('outInterface'),
    ...text('mark'),
    ...(sport === undefined ? {} : { sourcePort: whole(sport, '--sport', 65535) }),
    ...(dport === undefined ? {} : { destinationPort: whole(dport, '--dport', 65535) }),
    ...(ctState === undefined ? {} : { ctState }),
    ...(icmpType === undefined
      ? {}
      : { icmpType: /^[0-9]+$/.test(icmpType) ? whole(icmpType, '--icmp-type', 255) : icmpType }),
    ...(flags === undefined ? {} : { tcpFlags: flags.map((f) => f.toUpperCase()) }),
    ...(cmd.options.has('fragment') ? { fragment: true } : {}),
    ...(length === undefined ? {} : { length: whole(length, '--length', 65535) }),
  };
}

export async function trace(ctx: Context, cmd: WordCommand): Promise<number> {
  const packet = packetFrom(cmd, ctx.common.family);
  const answer = await call(ctx.connection, ctx.api.POST('/v1/trace', { body: { packet } }));
  if (ctx.common.json) printJson(ctx, answer);
  else ctx.io.stdout.write(renderTrace(answer, styleFor(ctx.io.stdout, ctx.io.env)));
  return EXIT.ok;
}
