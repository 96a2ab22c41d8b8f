/**
 * Which REST operation a request is, by the contract's own routes (openapi/openapi.yaml):
 * its operationId, the name the gRPC door uses for the same call, so that metrics and logs
 * of both doors line up. Requests that match no documented route are `unknown`: the label set
 * stays bounded whatever clients send.
 */
import { openApiDocument } from './docs.js';

type Doc = { paths?: Record<string, Record<string, { operationId?: string } | undefined>> };

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly params: number;
  readonly operationId: string;
}

let routes: Route[] | undefined;

function compile(): Route[] {
  const doc = openApiDocument().document as unknown as Doc;
  const out: Route[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const operationId = item[method]?.operationId;
      if (!operationId) continue;
      const params = (path.match(/\{[^}]+\}/g) ?? []).length;
      const source = path
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))
        .join('[^/]+');
      out.push({ method: method.toUpperCase(), pattern: new RegExp(`^${source}/?$`), params, operationId });
    }
  }
  // Literal segments win over parameters (`/rules/ensure` before `/rules/{id}`).
  return out.sort((a, b) => a.params - b.params);
}

/** The operationId of `method` on `path` (no query), or `unknown`. HEAD counts as GET. */
export function operationOf(method: string, path: string): string {
  routes ??= compile();
  const m = method === 'HEAD' ? 'GET' : method;
  for (const r of routes) if (r.method === m && r.pattern.test(path)) return r.operationId;
  return 'unknown';
}
