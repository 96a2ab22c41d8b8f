/**
 * Helpers for REST tests: an app on a seeded FakeExecutor with a read and a
 * write token, and `checked(res)`, which validates a supertest response
 * against the OpenAPI document: the status must be documented for the
 * operation, the content type must be one it lists, and a JSON body must
 * match its schema (Ajv 2020, the validator's own dependency).
 */

import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Response } from 'supertest';
import { expect } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import { Authenticator, hashToken } from '../../../src/transport/auth.js';
import { type AppOptions, createApp } from '../../../src/transport/http/app.js';
import { openApiDocument } from '../../../src/transport/http/docs.js';
import { type ServiceFixture, startSeeded, startService } from '../../helpers/service.js';

export const READ_TOKEN = 'read-token-0123456789';
export const WRITE_TOKEN = 'write-token-0123456789';
export const READ = `Bearer ${READ_TOKEN}`;
export const WRITE = `Bearer ${WRITE_TOKEN}`;

export function authenticator(): Authenticator {
  return new Authenticator([
    { name: 'reader', sha256: hashToken(READ_TOKEN), scope: 'read' },
    { name: 'writer', sha256: hashToken(WRITE_TOKEN), scope: 'write' },
  ]);
}

export interface AppFixture extends ServiceFixture {
  readonly app: ReturnType<typeof createApp>;
  readonly logs: string[];
}

/** A started, seeded service (see test/helpers/service.ts) behind an app without auth unless asked. */
export async function startApp(
  options: Partial<Omit<AppOptions, 'service' | 'auth'>> & {
    families?: readonly Family[];
    empty?: boolean;
  } = {},
): Promise<AppFixture> {
  const { families, empty, ...rest } = options;
  const fx = empty ? await startService() : await startSeeded(families);
  const logs: string[] = [];
  const app = createApp({
    service: fx.service,
    auth: authenticator(),
    requireAuth: false,
    logger: (l) => logs.push(l),
    ...rest,
  });
  return { ...fx, app, logs };
}

// ------------------------------------------------------------------ response validation

type Doc = {
  paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
  components: { responses: Record<string, unknown> };
};
const doc = openApiDocument().document as unknown as Doc;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats.default(ajv);
ajv.addSchema({ ...doc, $id: 'openapi.json' } as object);

const templates = Object.keys(doc.paths).map((p) => ({
  template: p,
  re: new RegExp(`^${p.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The documented template of a concrete path (most specific first: fewer parameters). */
export function templateOf(path: string): string | undefined {
  const hits = templates.filter((t) => t.re.test(path));
  hits.sort((a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0));
  return hits[0]?.template;
}

/**
 * Asserts that `res` is a documented response of the operation it answers, with a body
 * matching the schema. Unknown routes and methods (404/405) must be problem documents.
 */
export function checked(res: Response): Response {
  const req = (res as unknown as { req: { method: string; path: string } }).req;
  const url = new URL(req.path, 'http://x');
  const method = req.method.toLowerCase();
  const template = templateOf(decodeURI(url.pathname));
  const contentType =
    String(res.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim() ?? '';
  const where = `${req.method} ${url.pathname} -> ${res.status}`;
  const op = template ? doc.paths[template]?.[method] : undefined;
  if (!op) {
    expect([404, 405, 401, 403], `${where}: undocumented operation`).toContain(res.status);
    expect(contentType, where).toBe('application/problem+json');
    validate(res.body, '#/components/schemas/Problem', where);
    return res;
  }
  const status = String(res.status);
  expect(Object.keys(op.responses ?? {}), `${where}: status not documented`).toContain(status);
  let response = op.responses?.[status] as { $ref?: string; content?: Record<string, unknown> };
  let pointer = `#/paths/${escapePointer(template as string)}/${method}/responses/${status}`;
  if (response.$ref) {
    const name = response.$ref.split('/').pop() as string;
    response = doc.components.responses[name] as typeof response;
    pointer = `#/components/responses/${name}`;
  }
  const types = Object.keys(response.content ?? {});
  if (types.length === 0) return res;
  expect(types, `${where}: content type ${contentType} not documented`).toContain(contentType);
  if (contentType.endsWith('json'))
    validate(res.body, `${pointer}/content/${escapePointer(contentType)}/schema`, where);
  return res;
}

function validate(body: unknown, pointer: string, where: string): void {
  const v = ajv.getSchema(`openapi.json${pointer}`);
  if (!v) throw new Error(`no schema at ${pointer}`);
  const ok = v(body);
  expect(
    ok ? [] : v.errors,
    `${where}: body does not match ${pointer}: ${JSON.stringify(body).slice(0, 400)}`,
  ).toEqual([]);
}

/** A problem document's essentials, for assertions. */
export function problemOf(res: Response): { status: number; code: string; field?: string } {
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const b = res.body as { status: number; code: string; field?: string };
  expect(b.status).toBe(res.status);
  return { status: b.status, code: b.code, ...(b.field === undefined ? {} : { field: b.field }) };
}
