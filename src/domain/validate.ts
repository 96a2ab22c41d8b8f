/**
 * Strict input grammar shared by every layer. A value that reaches restore
 * text must pass one of these first: none of them lets a newline, NUL, quote
 * or other control byte through, so no input can smuggle a second command
 * into `iptables-restore`. Every error names the field it is about.
 */
import { preview } from './address.js';
import { invalid } from './errors.js';

/** Longest chain name iptables accepts (XT_EXTENSION_MAXNAMELEN - 1). */
export const MAX_CHAIN_NAME = 28;
/** Longest interface name (IFNAMSIZ - 1). */
export const MAX_INTERFACE_NAME = 15;
/** Longest `-m comment --comment` text (XT_MAX_COMMENT_LEN - 1). */
export const MAX_COMMENT = 255;
/** Longest `-j LOG --log-prefix` (29 characters). */
export const MAX_LOG_PREFIX = 29;
/** Longest `-j NFLOG --nflog-prefix` (63 characters). */
export const MAX_NFLOG_PREFIX = 63;
/** Longest word kept for an untyped match or target (iptables' parameter buffer is 1023 bytes). */
export const MAX_RAW_TOKEN = 1024;

const CONTROL = /[\x00-\x1f\x7f]/;
const CHAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
/** A name, a prefix with `+`, or `+` alone (any interface; iptables drops it unless negated). */
const INTERFACE = /^(?:[A-Za-z0-9_.:-]+\+?|\+)$/;
/**
 * Names no user chain may take, because the iptables in use reads them as a verdict
 * or target extension (`iptables -N LOG` fails; `-j LOG` is the target). Which names
 * those are depends on the iptables release, so the domain does not own them: the
 * caller passes them in (src/iptables/catalogue.ts binds them for the iptables we speak).
 */
export type ReservedChainNames = ReadonlySet<string>;

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(field, `${field} must be a string`);
  return value;
}

/** A UTF-16 surrogate without its partner: it has no UTF-8 form, so the kernel could never hold it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Any free text (comment, log prefix): one line of Unicode without control characters,
 * at most `maxBytes` bytes in UTF-8 (the kernel keeps these as byte arrays). Quotes,
 * backslashes and `#` are fine: the writer quotes them as iptables-save does.
 */
export function checkText(value: unknown, field: string, maxBytes: number): string {
  const text = requireString(value, field);
  if (CONTROL.test(text) || /[\x80-\x9f]/.test(text)) {
    throw invalid(field, `${field} must not contain control characters such as newline, tab or NUL`);
  }
  if (LONE_SURROGATE.test(text)) {
    throw invalid(field, `${field} holds a lone UTF-16 surrogate, which has no UTF-8 form`);
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw invalid(field, `${field} is ${bytes} bytes long in UTF-8; at most ${maxBytes} are allowed`);
  }
  return text;
}

/** Whether `name` is a chain name checkChainName takes (a test, for callers that only ask). */
export function isChainName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_CHAIN_NAME && CHAIN_NAME.test(name);
}

export function checkChainName(value: unknown, field = 'chain'): string {
  const name = requireString(value, field);
  if (name.length === 0) throw invalid(field, `${field} must not be empty`);
  if (name.length > MAX_CHAIN_NAME) {
    throw invalid(field, `${field} "${preview(name)}" is longer than ${MAX_CHAIN_NAME} characters`);
  }
  if (!CHAIN_NAME.test(name)) {
    throw invalid(
      field,
      `${field} "${preview(name)}" may only contain letters, digits and _ . + - and must start with a letter, digit or _`,
    );
  }
  return name;
}

/**
 * A name for a new user chain: a valid chain name that is not one of `reserved`
 * (a verdict or target name). Callers use src/iptables/catalogue.ts' checkUserChainName,
 * which passes the names of the iptables we speak.
 */
export function checkUnreservedChainName(
  value: unknown,
  reserved: ReservedChainNames,
  field = 'chain',
): string {
  const name = checkChainName(value, field);
  if (reserved.has(name))
    throw invalid(field, `${field} "${name}" is reserved: it is the name of a verdict or target`);
  return name;
}

/**
 * An interface name, optionally ending in `+` (any interface with that prefix).
 * The `+` counts: iptables refuses `abcdefghijklmno+` (16 characters).
 */
export function checkInterface(value: unknown, field: string): string {
  const name = requireString(value, field);
  if (name.length === 0 || name.length > MAX_INTERFACE_NAME) {
    throw invalid(
      field,
      `${field} "${preview(name)}" must be 1 to ${MAX_INTERFACE_NAME} characters (a final + included)`,
    );
  }
  if (!INTERFACE.test(name)) {
    throw invalid(
      field,
      `${field} "${preview(name)}" may only contain letters, digits and _ . : - (and a final +)`,
    );
  }
  return name;
}

/** An unsigned integer in [min, max]; accepts a number or its decimal (or 0x hex) text. */
export function checkUint(value: unknown, field: string, min: number, max: number): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^(0|[1-9]\d{0,15}|0x[0-9a-fA-F]{1,8})$/.test(value))
    n = Number(value);
  else throw invalid(field, `${field} must be a whole number from ${min} to ${max}`);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw invalid(
      field,
      `${field} must be a whole number from ${min} to ${max} (got ${preview(String(value))})`,
    );
  }
  return n;
}

/** A port: 0 to 65535. */
export function checkPort(value: unknown, field: string): number {
  return checkUint(value, field, 0, 65535);
}

/**
 * A port or an inclusive range `a:b` (open ends allowed as in iptables: `:b`,
 * `a:`). Canonical text as iptables-save prints it: `22`, `1000:2000`.
 * Returns undefined for the full range `0:65535`, which iptables drops.
 */
export function canonicalPortRange(value: unknown, field: string): string {
  if (typeof value === 'number') return String(checkPort(value, field));
  const text = requireString(value, field);
  const m = /^(\d{0,5})(?::(\d{0,5}))?$/.exec(text);
  if (!m || text === '' || text === ':') {
    throw invalid(field, `${field} "${preview(text)}" must be a port (0-65535) or a range like 1000:2000`);
  }
  const lo = m[1] === '' ? 0 : checkPort(m[1], field);
  if (m[2] === undefined) return String(lo);
  const hi = m[2] === '' ? 65535 : checkPort(m[2], field);
  if (lo > hi) throw invalid(field, `${field} range "${text}" starts after it ends`);
  return lo === hi ? String(lo) : `${lo}:${hi}`;
}

/**
 * A word of an untyped match or target, as written on an iptables line (quotes
 * included when the value needs them). Here only its shape is checked: bounded,
 * one line, no control byte. Whether it is one well-formed word that iptables reads
 * back as written is iptables syntax, checked by src/iptables (checkRuleLine) before
 * a rule is planned, and again by the writer.
 */
export function checkRawToken(value: unknown, field: string): string {
  const token = requireString(value, field);
  if (token.length === 0) throw invalid(field, `${field} must not be empty`);
  if (token.length > MAX_RAW_TOKEN)
    throw invalid(field, `${field} is longer than ${MAX_RAW_TOKEN} characters`);
  if (CONTROL.test(token) || /[\x80-\x9f]/.test(token))
    throw invalid(field, `${field} must not contain control characters such as newline or NUL`);
  return token;
}

/** An identifier-like name (recent list, hashlimit table, ipset): letters, digits, _ . - */
export function checkName(value: unknown, field: string, maxLength: number): string {
  const name = requireString(value, field);
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.length > maxLength) {
    throw invalid(
      field,
      `${field} "${preview(name)}" must be 1 to ${maxLength} letters, digits, _ . or - characters`,
    );
  }
  return name;
}
