/**
 * Protobuf encoding of the read replies that carry rules (GetChain, GetTable), written by hand
 * from the model's views. Why: protobuf-es encodes by reflection, and a rule's options are a
 * google.protobuf.Struct (a map of Value messages): a 100-rule GetChain cost the daemon ~2.4 ms
 * of CPU, most of it in create() and toBinary() (measured with --cpu-prof under 256 clients).
 *
 * The bytes are exactly what `toBinary(Schema, create(Schema, convert.ts's init shape))` gives
 * (test/transport/grpc-encode-views.test.ts compares them on generated hostile rulesets): the
 * same fields in field-number order, proto3 defaults left out, `optional` fields and oneof
 * members written when set, Struct entries in key order. Strings go through Buffer.from (its
 * pool) instead of a TextEncoder allocation per string.
 */
import {
  type Counters,
  isGoto,
  isJump,
  isRawMatch,
  isRawTarget,
  type Match,
  type Rule,
  type Target,
} from '../../domain/model.js';
import type {
  GetChainResponseSchema,
  GetTableResponseSchema,
} from '../../gen/portcullis/v1/firewall_service_pb.js';
import type { ChainView, RuleDetail, RuleView } from '../../service/api.js';
import { Encoded } from './adapter.js';
import { policyTo } from './convert.js';

/**
 * One growing buffer. A length-delimited field reserves one byte for its length and moves its
 * content up in the rare case the length needs more (128 bytes or over): no chunk per nested
 * message, as protobuf-es's fork/join makes (measured: most of a hand encoder's time with it).
 */
class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size = 16 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A non-negative whole number below 2^53. */
  varint(n: number): this {
    this.ensure(8);
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
    return this;
  }

  uint64(n: bigint): this {
    this.ensure(10);
    while (n >= 128n) {
      this.buf[this.pos++] = Number(n & 127n) | 128;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
    return this;
  }

  tag(no: number, wireType: WireType): this {
    return this.varint(no * 8 + wireType);
  }

  string(s: string): this {
    const n = s.length;
    this.ensure(n * 3 + 5);
    if (n < 128) {
      // Short ASCII (most of a rule) copied by hand: its length is known before the bytes.
      const buf = this.buf;
      let p = this.pos + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          p = -1;
          break;
        }
        buf[p++] = c;
      }
      if (p >= 0) {
        buf[this.pos] = n;
        this.pos = p;
        return this;
      }
    }
    const at = this.begin();
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return this.end(at);
  }

  double(v: number): this {
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
    return this;
  }

  /** Starts a length-delimited value (after its tag); returns where its length goes. */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends the value begun at `at`: writes its length, moving the content up when it needs more than one byte. */
  end(at: number): this {
    const length = this.pos - at - 1;
    if (length < 128) {
      this.buf[at] = length;
      return this;
    }
    let extra = 0;
    for (let n = length; n >= 128; n = Math.floor(n / 128)) extra++;
    this.ensure(extra);
    this.buf.copy(this.buf, at + 1 + extra, at + 1, this.pos);
    this.pos = at;
    this.varint(length);
    this.pos += length;
    return this;
  }

  finish(): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.pos);
  }
}

/** Wire types (protobuf encoding). */
enum WireType {
  Varint = 0,
  Bit64 = 1,
  LengthDelimited = 2,
}

const LD = WireType.LengthDelimited;
const VARINT = WireType.Varint;

function counters(w: Writer, no: number, c: Counters): void {
  const at = w.tag(no, LD).begin();
  if (c.packets !== 0n) w.tag(1, VARINT).uint64(c.packets);
  if (c.bytes !== 0n) w.tag(2, VARINT).uint64(c.bytes);
  w.end(at);
}

/** google.protobuf.Value, as protobuf-es makes it from JSON (other types: an empty Value). */
function value(w: Writer, v: unknown): void {
  switch (typeof v) {
    case 'number':
      w.tag(2, WireType.Bit64).double(v);
      return;
    case 'string':
      w.tag(3, LD).string(v);
      return;
    case 'boolean':
      w.tag(4, VARINT).varint(v ? 1 : 0);
      return;
    case 'object':
      if (v === null) w.tag(1, VARINT).varint(0);
      else if (Array.isArray(v)) {
        const list = w.tag(6, LD).begin();
        for (const e of v) {
          const item = w.tag(1, LD).begin();
          value(w, e);
          w.end(item);
        }
        w.end(list);
      } else {
        const at = w.tag(5, LD).begin();
        struct(w, v as Record<string, unknown>);
        w.end(at);
      }
      return;
    default:
      return;
  }
}

/** The fields of a google.protobuf.Struct: one map entry (key 1, Value 2) per key, in order. */
function struct(w: Writer, o: Readonly<Record<string, unknown>>): void {
  for (const k in o) {
    const entry = w.tag(1, LD).begin();
    w.tag(1, LD).string(k);
    const at = w.tag(2, LD).begin();
    value(w, o[k]);
    w.end(at).end(entry);
  }
}

/** Match and Extension: name 1, options 2 (a Struct, only when there are any), raw 3. */
function extension(
  w: Writer,
  name: string,
  options: Readonly<Record<string, unknown>>,
  raw?: readonly string[],
): void {
  if (name !== '') w.tag(1, LD).string(name);
  if (raw === undefined) {
    for (const _ in options) {
      const at = w.tag(2, LD).begin();
      struct(w, options);
      w.end(at);
      break;
    }
  } else for (const r of raw) w.tag(3, LD).string(r);
}

function match(w: Writer, m: Match): void {
  const at = w.tag(8, LD).begin();
  if (isRawMatch(m)) extension(w, m.module, {}, m.raw);
  else {
    const { module, ...options } = m as { module: string } & Record<string, unknown>;
    extension(w, module, options);
  }
  w.end(at);
}

function target(w: Writer, t: Target): void {
  const at = w.tag(9, LD).begin();
  if (isJump(t)) w.tag(1, LD).string(t.jump);
  else if (isGoto(t)) w.tag(2, LD).string(t.goto);
  else {
    const ext = w.tag(3, LD).begin();
    if (isRawTarget(t)) extension(w, t.target, {}, t.raw);
    else {
      const { target: name, ...options } = t as { target: string } & Record<string, unknown>;
      extension(w, name, options);
    }
    w.end(ext);
  }
  w.end(at);
}

function rule(w: Writer, r: Rule): void {
  const at = w.tag(4, LD).begin();
  if (r.protocol !== undefined) w.tag(1, LD).string(r.protocol);
  if (r.source !== undefined) w.tag(2, LD).string(r.source);
  if (r.destination !== undefined) w.tag(3, LD).string(r.destination);
  if (r.inInterface !== undefined) w.tag(4, LD).string(r.inInterface);
  if (r.outInterface !== undefined) w.tag(5, LD).string(r.outInterface);
  if (r.fragment === true) w.tag(6, VARINT).varint(1);
  for (const i of r.invert ?? []) w.tag(7, LD).string(i);
  for (const m of r.matches) match(w, m);
  if (r.target) target(w, r.target);
  w.end(at);
}

function ruleView(w: Writer, no: number, v: RuleView | RuleDetail): void {
  const at = w.tag(no, LD).begin();
  if (v.id !== '') w.tag(1, LD).string(v.id);
  if (v.position !== 0) w.tag(2, VARINT).varint(v.position);
  if (v.text !== '') w.tag(3, LD).string(v.text);
  rule(w, v.rule);
  const d = v as RuleDetail;
  if (d.counters) counters(w, 5, d.counters);
  if (d.expiresAt) w.tag(6, LD).string(d.expiresAt);
  w.end(at);
}

function chainView(w: Writer, no: number, c: ChainView): void {
  const at = w.tag(no, LD).begin();
  if (c.name !== '') w.tag(1, LD).string(c.name);
  if (c.builtin) w.tag(2, VARINT).varint(1);
  const policy = policyTo(c.policy);
  if (policy !== 0) w.tag(3, VARINT).varint(policy);
  if (c.counters) counters(w, 4, c.counters);
  for (const r of c.rules) ruleView(w, 5, r);
  w.end(at);
}

function revision(w: Writer, r: number): void {
  if (r !== 0) w.tag(1, VARINT).varint(r);
}

/**
 * The encoded chain field (2) of a GetChainResponse, kept with its view: the service hands out
 * the same view for an unchanged chain (service/views.ts ChainViewCache).
 */
const chainFields = new WeakMap<ChainView, Buffer>();

/** GetChainResponse: revision 1, chain 2 (fields in order: the chain's bytes follow the revision's). */
export function encodeGetChainResponse(
  rev: number,
  chain: ChainView,
): Encoded<typeof GetChainResponseSchema> {
  let field = chainFields.get(chain);
  if (field === undefined) {
    const c = new Writer();
    chainView(c, 2, chain);
    field = Buffer.from(c.finish());
    chainFields.set(chain, field);
  }
  const w = new Writer(field.length + 11);
  revision(w, rev);
  w.buf.set(field, w.pos);
  w.pos += field.length;
  return new Encoded(w.finish());
}

/** GetTableResponse: revision 1, chains 2. */
export function encodeGetTableResponse(
  rev: number,
  chains: readonly ChainView[],
): Encoded<typeof GetTableResponseSchema> {
  const w = new Writer();
  revision(w, rev);
  for (const c of chains) chainView(w, 2, c);
  return new Encoded(w.finish());
}
