/**
 * The small client interface the e2e scenarios are written against, once, with two
 * implementations speaking to the running service: REST (fetch with a bearer token, as curl
 * would) and gRPC (grpc-js with the generated descriptors). Both return the same plain
 * shapes, and both throw {@link ApiError} carrying the domain error code (REST: the
 * problem+json `code`; gRPC: the `portcullis-code` trailer), so a scenario can assert the
 * same outcome through either door. Only the filter table is used.
 */
import type { JsonObject, JsonValue, MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceError } from '@grpc/grpc-js';
import { FirewallService, type OperationSchema } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import {
  Family as FamilyEnum,
  type MatchSchema,
  Policy as PolicyEnum,
  type RuleInputSchema,
  type RuleSchema,
  type RuleView as RuleViewMessage,
  type TargetSchema,
} from '../../src/gen/portcullis/v1/rule_pb.js';
import { createPromiseClient, type PromiseClient } from '../../src/transport/grpc/client.js';

export type Family = 'ipv4' | 'ipv6';
export type Policy = 'ACCEPT' | 'DROP';
export type Transport = 'rest' | 'grpc';

/** A typed rule exactly as the REST API takes it (src/domain/model.ts), e.g. `{ protocol: 'tcp', matches: [...] }`. */
export type TypedRule = {
  readonly matches?: readonly JsonObject[];
  readonly target?: JsonObject;
} & JsonObject;
/** A rule as pasted from an article (`{ spec }`) or typed. */
export type RuleInput = { readonly spec: string } | TypedRule;

export interface Counters {
  readonly packets: bigint;
  readonly bytes: bigint;
}

export interface RuleView {
  readonly id: string;
  readonly position: number;
  /** Canonical text: what iptables-save prints after `-A CHAIN `. */
  readonly text: string;
  readonly counters?: Counters;
}

export interface ChainView {
  readonly name: string;
  readonly policy?: Policy;
  readonly rules: readonly RuleView[];
}

export type TxOp =
  | { readonly op: 'append'; readonly family: Family; readonly chain: string; readonly rule: RuleInput }
  | { readonly op: 'createChain'; readonly family: Family; readonly chain: string }
  | { readonly op: 'setPolicy'; readonly family: Family; readonly chain: string; readonly policy: Policy };

/** A refused request: the domain (or transport) error code, whichever door it came through. */
export class ApiError extends Error {
  constructor(
    readonly transport: Transport,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** The finer reason (`lockout`, `revision_mismatch`, ...). */
    readonly reason?: string,
  ) {
    super(`${transport}: ${code}: ${message}`);
    this.name = 'ApiError';
  }
}

export interface FirewallClient {
  readonly transport: Transport;
  createChain(family: Family, chain: string): Promise<void>;
  appendRule(family: Family, chain: string, rule: RuleInput): Promise<RuleView>;
  setPolicy(family: Family, chain: string, policy: Policy): Promise<void>;
  /** One all-or-nothing transaction; resolves with the revision after it. */
  transaction(ops: readonly TxOp[]): Promise<number>;
  /** Back to the baseline (every family, every table). */
  reset(): Promise<void>;
  getChain(family: Family, chain: string, options?: { counters?: boolean }): Promise<ChainView>;
  /** The family's ruleset as iptables-save text. */
  rulesetText(family: Family): Promise<string>;
  revision(): Promise<number>;
  close(): void;
}

// ---------------------------------------------------------------- REST

interface ProblemBody {
  code?: string;
  detail?: string;
  field?: string;
  reason?: string;
}

interface RestRuleView {
  id: string;
  position: number;
  text: string;
  counters?: { packets: string; bytes: string };
}

function restRule(r: RestRuleView): RuleView {
  return {
    id: r.id,
    position: r.position,
    text: r.text,
    ...(r.counters
      ? { counters: { packets: BigInt(r.counters.packets), bytes: BigInt(r.counters.bytes) } }
      : {}),
  };
}

/** The spec string of a `{ spec }` rule, undefined for a typed one. */
export function specOf(rule: RuleInput): string | undefined {
  const spec = (rule as { spec?: unknown }).spec;
  return typeof spec === 'string' ? spec : undefined;
}

function restRuleInput(rule: RuleInput): JsonObject {
  const spec = specOf(rule);
  return spec !== undefined ? { spec } : { rule: rule as JsonObject };
}

export class RestClient implements FirewallClient {
  readonly transport = 'rest' as const;
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async call(
    method: string,
    path: string,
    body?: unknown,
    accept = 'application/json',
  ): Promise<{ body: unknown; text: string; headers: Headers }> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        Accept: accept,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    const isJson = /json/.test(res.headers.get('content-type') ?? '');
    const parsed: unknown = isJson && text !== '' ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const p = (parsed ?? {}) as ProblemBody;
      throw new ApiError('rest', p.code ?? `http_${res.status}`, p.detail ?? text, p.field, p.reason);
    }
    return { body: parsed, text, headers: res.headers };
  }

  private static q(family: Family, extra = ''): string {
    const params = [family === 'ipv6' ? 'family=ipv6' : '', extra].filter((s) => s !== '');
    return params.length > 0 ? `?${params.join('&')}` : '';
  }

  private static chain(chain: string): string {
    return `/v1/tables/filter/chains/${encodeURIComponent(chain)}`;
  }

  async createChain(family: Family, chain: string): Promise<void> {
    await this.call('POST', `/v1/tables/filter/chains${RestClient.q(family)}`, { name: chain });
  }

  async appendRule(family: Family, chain: string, rule: RuleInput): Promise<RuleView> {
    const r = await this.call(
      'POST',
      `${RestClient.chain(chain)}/rules${RestClient.q(family)}`,
      restRuleInput(rule),
    );
    return restRule((r.body as { rule: RestRuleView }).rule);
  }

  async setPolicy(family: Family, chain: string, policy: Policy): Promise<void> {
    await this.call('PUT', `${RestClient.chain(chain)}/policy${RestClient.q(family)}`, { policy });
  }

  async transaction(ops: readonly TxOp[]): Promise<number> {
    const r = await this.call('POST', '/v1/transactions', { operations: ops });
    return (r.body as { revision: number }).revision;
  }

  async reset(): Promise<void> {
    await this.call('POST', '/v1/reset', {});
  }

  async getChain(family: Family, chain: string, options: { counters?: boolean } = {}): Promise<ChainView> {
    const r = await this.call(
      'GET',
      `${RestClient.chain(chain)}${RestClient.q(family, options.counters ? 'counters=true' : '')}`,
    );
    const c = (r.body as { chain: { name: string; policy?: Policy; rules: RestRuleView[] } }).chain;
    return { name: c.name, ...(c.policy ? { policy: c.policy } : {}), rules: c.rules.map(restRule) };
  }

  async rulesetText(family: Family): Promise<string> {
    return (await this.call('GET', `/v1/ruleset${RestClient.q(family)}`, undefined, 'text/plain')).text;
  }

  async revision(): Promise<number> {
    return ((await this.call('GET', '/v1/status')).body as { revision: number }).revision;
  }

  close(): void {}
}

// ---------------------------------------------------------------- gRPC

type RuleInit = MessageInitShape<typeof RuleSchema>;

const familyEnum = (f: Family) => (f === 'ipv6' ? FamilyEnum.IPV6 : FamilyEnum.IPV4);
const policyEnum = (p: Policy) => (p === 'DROP' ? PolicyEnum.DROP : PolicyEnum.ACCEPT);

function without(o: JsonObject, ...keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(o)) if (!keys.includes(k)) out[k] = v as JsonValue;
  return out;
}

/** The REST API's typed JSON rule -> the proto Rule a gRPC client sends (options as Struct). */
export function protoRule(rule: TypedRule): RuleInit {
  const str = (k: string) => (typeof rule[k] === 'string' ? { [k]: rule[k] as string } : {});
  const matches: MessageInitShape<typeof MatchSchema>[] = (rule.matches ?? []).map((m) => {
    const raw = m.raw;
    return Array.isArray(raw)
      ? { module: String(m.module), raw: raw.map(String) }
      : { module: String(m.module), options: without(m, 'module') };
  });
  let target: MessageInitShape<typeof TargetSchema> | undefined;
  const t = rule.target;
  if (t !== undefined) {
    if (typeof t.jump === 'string') target = { kind: { case: 'jump', value: t.jump } };
    else if (typeof t.goto === 'string') target = { kind: { case: 'goto', value: t.goto } };
    else {
      const raw = t.raw;
      target = {
        kind: {
          case: 'extension',
          value: Array.isArray(raw)
            ? { name: String(t.target), raw: raw.map(String) }
            : { name: String(t.target), options: without(t, 'target') },
        },
      };
    }
  }
  return {
    ...str('protocol'),
    ...str('source'),
    ...str('destination'),
    ...str('inInterface'),
    ...str('outInterface'),
    ...(rule.fragment === true ? { fragment: true } : {}),
    ...(Array.isArray(rule.invert) ? { invert: rule.invert.map(String) } : {}),
    matches,
    ...(target ? { target } : {}),
  };
}

function protoRuleInput(rule: RuleInput): MessageInitShape<typeof RuleInputSchema> {
  const spec = specOf(rule);
  return spec !== undefined
    ? { kind: { case: 'spec', value: spec } }
    : { kind: { case: 'rule', value: protoRule(rule as TypedRule) } };
}

function grpcRule(r: RuleViewMessage | undefined): RuleView {
  if (!r) throw new Error('gRPC response without a rule');
  return {
    id: r.id,
    position: r.position,
    text: r.text,
    ...(r.counters ? { counters: { packets: r.counters.packets, bytes: r.counters.bytes } } : {}),
  };
}

function grpcOperation(op: TxOp): MessageInitShape<typeof OperationSchema> {
  const at = { family: familyEnum(op.family), table: 'filter', chain: op.chain };
  switch (op.op) {
    case 'append':
      return { kind: { case: 'appendRule', value: { ...at, rule: protoRuleInput(op.rule) } } };
    case 'createChain':
      return { kind: { case: 'createChain', value: at } };
    case 'setPolicy':
      return { kind: { case: 'setPolicy', value: { ...at, policy: policyEnum(op.policy) } } };
  }
}

export class GrpcClient implements FirewallClient {
  readonly transport = 'grpc' as const;
  private readonly client: PromiseClient<typeof FirewallService>;

  constructor(
    address: string,
    private readonly token: string,
  ) {
    this.client = createPromiseClient(FirewallService, address);
  }

  private async call<T>(run: (opts: { token: string; deadline: Date }) => Promise<T>): Promise<T> {
    try {
      return await run({ token: this.token, deadline: new Date(Date.now() + 30_000) });
    } catch (err) {
      const e = err as ServiceError;
      if (typeof e.code === 'number' && e.metadata) {
        const code = e.metadata.get('portcullis-code')[0];
        const field = e.metadata.get('portcullis-field')[0];
        const reason = e.metadata.get('portcullis-reason')[0];
        throw new ApiError(
          'grpc',
          typeof code === 'string' ? code : `grpc_${e.code}`,
          e.details,
          typeof field === 'string' ? field : undefined,
          typeof reason === 'string' ? reason : undefined,
        );
      }
      throw err;
    }
  }

  async createChain(family: Family, chain: string): Promise<void> {
    await this.call((o) =>
      this.client.createChain({ family: familyEnum(family), table: 'filter', chain }, o),
    );
  }

  async appendRule(family: Family, chain: string, rule: RuleInput): Promise<RuleView> {
    const r = await this.call((o) =>
      this.client.appendRule(
        { family: familyEnum(family), table: 'filter', chain, rule: protoRuleInput(rule) },
        o,
      ),
    );
    return grpcRule(r.rule);
  }

  async setPolicy(family: Family, chain: string, policy: Policy): Promise<void> {
    await this.call((o) =>
      this.client.setPolicy(
        { family: familyEnum(family), table: 'filter', chain, policy: policyEnum(policy) },
        o,
      ),
    );
  }

  async transaction(ops: readonly TxOp[]): Promise<number> {
    const operations = ops.map(grpcOperation);
    const r = await this.call((o) => this.client.apply({ operations }, o));
    return Number(r.revision);
  }

  async reset(): Promise<void> {
    await this.call((o) => this.client.reset({}, o));
  }

  async getChain(family: Family, chain: string, options: { counters?: boolean } = {}): Promise<ChainView> {
    const r = await this.call((o) =>
      this.client.getChain(
        { family: familyEnum(family), table: 'filter', chain, counters: options.counters === true },
        o,
      ),
    );
    const c = r.chain;
    if (!c) throw new Error('GetChain response without a chain');
    const policy =
      c.policy === PolicyEnum.DROP ? 'DROP' : c.policy === PolicyEnum.ACCEPT ? 'ACCEPT' : undefined;
    return { name: c.name, ...(policy ? { policy } : {}), rules: c.rules.map(grpcRule) };
  }

  async rulesetText(family: Family): Promise<string> {
    const r = await this.call((o) =>
      this.client.getRuleset({ family: familyEnum(family), includeText: true }, o),
    );
    return r.text;
  }

  async revision(): Promise<number> {
    return Number((await this.call((o) => this.client.getStatus({}, o))).revision);
  }

  close(): void {
    this.client.close();
  }
}
