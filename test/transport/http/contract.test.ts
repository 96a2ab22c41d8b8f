/**
 * The OpenAPI document itself: every operation, parameter and schema is described, operation
 * ids are unique, and the document is what GET /openapi.yaml serves.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../../src/transport/http/docs.js';
import { checked, startApp } from './helpers.js';

type Obj = Record<string, unknown>;
const doc = openApiDocument().document as Obj;

function walkSchemas(node: unknown, path: string, out: string[]): void {
  if (!node || typeof node !== 'object') return;
  const o = node as Obj;
  const isSchema = 'type' in o || 'oneOf' in o || 'allOf' in o || 'if' in o;
  if (isSchema && !('$ref' in o) && typeof o.description !== 'string') out.push(path);
  for (const key of ['properties']) {
    const props = o[key] as Obj | undefined;
    if (props) for (const [k, v] of Object.entries(props)) walkSchemas(v, `${path}/properties/${k}`, out);
  }
  // Scalar array items are described by their array; object items need their own description.
  if (o.items && (o.items as Obj).properties) walkSchemas(o.items, `${path}/items`, out);
}

describe('the OpenAPI document', () => {
  const methods = ['get', 'put', 'post', 'delete', 'patch'];
  const operations = Object.entries(doc.paths as Obj).flatMap(([p, item]) =>
    methods.filter((m) => (item as Obj)[m]).map((m) => ({ path: p, method: m, op: (item as Obj)[m] as Obj })),
  );

  it('describes every operation and names it uniquely', () => {
    const ids = operations.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const o of operations) {
      expect(typeof o.op.operationId, `${o.method} ${o.path}`).toBe('string');
      expect(typeof o.op.description, `${o.method} ${o.path}`).toBe('string');
    }
  });

  it('describes every parameter and every schema property', () => {
    const components = doc.components as Record<string, Obj>;
    for (const [name, p] of Object.entries(components.parameters ?? {}))
      expect(typeof (p as Obj).description, name).toBe('string');
    for (const o of operations)
      for (const p of (o.op.parameters as Obj[] | undefined) ?? [])
        if (!('$ref' in p)) expect(typeof p.description, `${o.path} ${String(p.name)}`).toBe('string');
    const missing: string[] = [];
    for (const [name, s] of Object.entries(components.schemas ?? {})) walkSchemas(s, name, missing);
    expect(missing).toEqual([]);
  });

  it('is served at /openapi.yaml without a token, and /docs loads nothing from elsewhere', async () => {
    const { app } = await startApp({ requireAuth: true });
    const spec = checked(await request(app).get('/openapi.yaml'));
    expect(spec.status).toBe(200);
    expect(spec.text).toBe(openApiDocument().text);
    const redirect = await request(app).get('/docs');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('/docs/');
    const page = await request(app).get('/docs/');
    expect(page.status).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(page.text).not.toMatch(/https?:\/\//);
    for (const asset of [
      'swagger-ui.css',
      'swagger-ui-bundle.js',
      'swagger-ui-standalone-preset.js',
      'init.js',
    ]) {
      expect(page.text.includes(asset) || asset === 'init.js').toBe(true);
      const r = await request(app).get(`/docs/${asset}`);
      expect(r.status, asset).toBe(200);
    }
    const init = await request(app).get('/docs/init.js');
    expect(init.text).toContain('validatorUrl: null');
    expect((await request(app).get('/docs/index.html')).status).toBe(401);
  });
});
