/**
 * The REST door's request validation against the contract (openapi/openapi.yaml), with the
 * validators compiled ahead of time (src/gen/openapi-validators.ts, made by
 * scripts/openapi-validators.mjs): nothing is compiled at start-up or at a route's first
 * request, and a request costs one route lookup and two generated functions.
 *
 * It answers as express-openapi-validator 5.6 did (test/transport/http/validation-parity.test.ts
 * sends the same requests through both): an undocumented path is 404, a documented path
 * with another method 405, an undeclared or empty query parameter 400, a body-taking
 * operation called without a media type or with one other than application/json 415, and
 * every schema error a 400 whose errors carry the instance path (`/body/rule/dport`), Ajv's
 * message and `<keyword>.openapi.validation`, which problem.ts turns into fields.
 */
import type { NextFunction, Request, Response } from 'express';
import { bodyValidators, generalValidators, ROUTES } from '../../gen/openapi-validators.js';

interface AjvError {
  readonly instancePath: string;
  readonly schemaPath: string;
  readonly keyword: string;
  readonly params: Record<string, unknown>;
  message?: string;
}

type Validate = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

interface RouteSpec {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly query: readonly string[];
  readonly allowEmpty: readonly string[];
  readonly allowReserved: readonly string[];
  readonly commaLists: readonly string[];
  readonly body: { readonly required: boolean | undefined } | null;
}

interface Compiled {
  readonly spec: RouteSpec;
  readonly pattern: RegExp;
  readonly keys: readonly string[];
  readonly general: Validate;
  readonly body: Validate | undefined;
}

/** A refusal shaped as problem.ts reads validator errors (status, errors). */
export class RequestInvalid extends Error {
  override readonly name = 'RequestInvalid';
  constructor(
    readonly status: number,
    message: string,
    readonly errors: readonly { path?: string; message?: string; errorCode?: string }[] = [],
    /** For a 405: the methods the resource takes (its `Allow` header). */
    readonly allow?: readonly string[],
  ) {
    super(message);
  }
}

/** Methods in the order an `Allow` header lists them; HEAD goes wherever GET does. */
const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

function compile(): Map<string, Compiled[]> {
  const byPath: Compiled[] = [];
  for (const spec of ROUTES as readonly RouteSpec[]) {
    const keys: string[] = [];
    const source = spec.path
      .split(/(\{[^}]+\})/)
      .map((part) => {
        const m = /^\{([^}]+)\}$/.exec(part);
        if (m) {
          keys.push(m[1] as string);
          return '([^/]+?)';
        }
        return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
      })
      .join('');
    byPath.push({
      spec,
      // As express (and the validator) route: case-insensitive, an optional trailing slash.
      pattern: new RegExp(`^${source}/?$`, 'i'),
      keys,
      general: generalValidators[spec.id] as Validate,
      body: spec.body ? (bodyValidators[spec.id] as Validate) : undefined,
    });
  }
  // By path template, most specific first, as express-openapi-validator sorts its routes
  // (framework/openapi.spec.loader.js): a parameter sorts after any literal segment, and a
  // template that extends another comes before it (`/rules/ensure` before `/rules/{id}`).
  const templates = new Map<string, Compiled[]>();
  for (const c of byPath) {
    const list = templates.get(c.spec.path);
    if (list) list.push(c);
    else templates.set(c.spec.path, [c]);
  }
  const key = (path: string) => path.replace(/\/\{/g, '/~');
  const specific = (a: string, b: string): number => {
    const [ka, kb] = [key(a), key(b)];
    if (ka.startsWith(kb)) return -1;
    if (kb.startsWith(ka)) return 1;
    return ka > kb ? 1 : -1;
  };
  return new Map([...templates].sort((a, b) => specific(a[0], b[0])));
}

let routes: Map<string, Compiled[]> | undefined;

/** `enum` messages name the allowed values; paths name the missing or extra property. */
function toErrors(errors: readonly AjvError[]): { path: string; message?: string; errorCode: string }[] {
  return errors.map((e) => {
    if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues))
      e.message = `${e.message}: ${(e.params.allowedValues as unknown[]).join(', ')}`;
    const extra =
      (e.params.missingProperty as string | undefined) ??
      (e.params.additionalProperty as string | undefined) ??
      (e.params.unevaluatedProperty as string | undefined);
    return {
      path: extra !== undefined ? `${e.instancePath}/${extra}` : e.instancePath,
      ...(e.message === undefined ? {} : { message: e.message }),
      errorCode: `${e.keyword}.openapi.validation`,
    };
  });
}

function errorsText(errors: readonly AjvError[]): string {
  return errors.map((e) => `request${e.instancePath} ${e.message ?? ''}`).join(', ');
}

const RESERVED = /[:/?#[\]@!$&'()*+,;=]/;

/**
 * A declared query parameter's raw (undecoded) value may not hold reserved characters
 * (OpenAPI's `allowReserved: false`); the parts of an unexploded list are checked one by one.
 */
function checkReserved(spec: RouteSpec, url: string): void {
  const at = url.indexOf('?');
  if (at < 0) return;
  const raw = new Map<string, string[]>();
  for (const pair of url.slice(at + 1).split('&')) {
    const [k = '', v] = pair.split('=');
    const list = raw.get(k);
    if (list) list.push(v as string);
    else raw.set(k, [v as string]);
  }
  for (const name of spec.query) {
    if (spec.allowReserved.includes(name)) continue;
    for (const v of raw.get(name) ?? []) {
      if (v === undefined) continue;
      for (const part of spec.commaLists.includes(name) ? v.split(',') : [v]) {
        if (RESERVED.test(part)) {
          const message = `Parameter '${name}' must be url encoded. Its value may not contain reserved characters.`;
          throw new RequestInvalid(400, message, [{ path: `/query/${name}`, message }]);
        }
      }
    }
  }
}

export function validateRequest(req: Request): void {
  routes ??= compile();
  const path = req.originalUrl.split('?')[0] ?? '';
  let found: { list: Compiled[]; values: string[] } | undefined;
  for (const list of routes.values()) {
    const m = (list[0] as Compiled).pattern.exec(path);
    if (m) {
      found = { list, values: m.slice(1) };
      break;
    }
  }
  if (!found) throw new RequestInvalid(404, 'not found');
  const { list, values } = found;
  const params: Record<string, string> = {};
  try {
    (list[0] as Compiled).keys.forEach((k, i) => {
      params[k] = decodeURIComponent(values[i] as string);
    });
  } catch {
    throw new RequestInvalid(400, 'malformed URI: a path segment is not valid percent-encoding', [
      { message: 'malformed URI: a path segment is not valid percent-encoding' },
    ]);
  }
  // HEAD is GET without the body (node leaves the body out), as RFC 9110 asks of every server.
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const op = list.find((c) => c.spec.method === method);
  if (!op) {
    const methods = new Set(list.map((c) => c.spec.method));
    if (methods.has('GET')) methods.add('HEAD');
    const allow = METHOD_ORDER.filter((m) => methods.has(m));
    throw new RequestInvalid(405, `${req.method} method not allowed`, [], allow);
  }
  let body = op.body;
  if (op.spec.body) {
    const header = req.headers['content-type'];
    const mediaType = header?.split(';')[0]?.toLowerCase().trim();
    if (mediaType !== 'application/json') {
      if (!mediaType && op.spec.body.required === false) body = undefined;
      else
        throw new RequestInvalid(
          415,
          mediaType ? `unsupported media type ${mediaType}` : 'media type not specified',
        );
    }
  }
  checkReserved(op.spec, req.originalUrl);
  const query = { ...(req.query as Record<string, unknown>) };
  for (const q of Object.keys(query)) {
    if (!op.spec.query.includes(q))
      throw new RequestInvalid(400, `Unknown query parameter '${q}'`, [
        { path: `/query/${q}`, message: `Unknown query parameter '${q}'` },
      ]);
    if (!op.spec.allowEmpty.includes(q) && query[q] === '')
      throw new RequestInvalid(400, `Empty value found for query parameter '${q}'`, [
        { path: `/query/${q}`, message: `Empty value found for query parameter '${q}'` },
      ]);
  }
  // Copies: coercion and defaults must not leak into what the routes read.
  const data = { query, headers: { ...req.headers }, params, cookies: undefined, body: req.body };
  const generalOk = op.general(data);
  const bodyOk = body === undefined ? true : body(data);
  if (generalOk && bodyOk) return;
  const errors = [...(op.general.errors ?? []), ...((bodyOk ? undefined : body?.errors) ?? [])];
  throw new RequestInvalid(400, errorsText(errors), toErrors(errors));
}

/** Express middleware: validates, then continues; a refusal goes to the error handler. */
export function requestValidation(req: Request, _res: Response, next: NextFunction): void {
  validateRequest(req);
  next();
}
