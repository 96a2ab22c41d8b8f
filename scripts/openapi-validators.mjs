/**
 * `npm run generate:openapi` (third step): the REST door's request validators, compiled from
 * openapi/openapi.yaml ahead of time with Ajv's standalone code into
 * src/gen/openapi-validators.ts. At run time nothing is compiled: express-openapi-validator
 * spent about 1.2 s of CPU right after start-up (dereferencing and compiling the whole
 * document) and 50-600 ms more at the first request of each route; its route lookup and
 * parameter handling were a third of the CPU of a REST read.
 *
 * Per operation, as express-openapi-validator builds them (so that errors keep their
 * instance paths, keywords and messages): a "general" schema over
 * `{ query, headers, params }` (types coerced from strings, defaults filled in) and a "body"
 * schema over `{ body }` (no coercion). Components are one shared schema
 * (`portcullis:openapi`), so each is compiled once. The route table (method, path template,
 * parameters, body rules) goes along as data; src/transport/http/request-validation.ts uses both.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const Ajv2020 = require('ajv/dist/2020').default;
const standaloneCode = require('ajv/dist/standalone').default;
const addFormats = require('ajv-formats').default;

const doc = parse(readFileSync(join(root, 'openapi', 'openapi.yaml'), 'utf8'));
const COMPONENTS_ID = 'portcullis:openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** `#/components/...` -> the shared components schema. */
function rewriteRefs(value) {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `${COMPONENTS_ID}${v}` : rewriteRefs(v);
  }
  return out;
}

function deref(obj) {
  if (obj && typeof obj.$ref === 'string') {
    const parts = obj.$ref.replace(/^#\//, '').split('/');
    let cur = doc;
    for (const p of parts) cur = cur[p.replace(/~1/g, '/').replace(/~0/g, '~')];
    return deref(cur);
  }
  return obj;
}

const IN = { query: 'query', header: 'headers', path: 'params', cookie: 'cookies' };

/** Options as express-openapi-validator 5.6 sets them for requests (framework/ajv/options.js). */
function ajvFor(coerceTypes) {
  const ajv = new Ajv2020({
    strict: false,
    strictNumbers: true,
    strictTuples: true,
    allowUnionTypes: false,
    validateSchema: false,
    coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    validateFormats: true,
    allErrors: true,
    code: { source: true, esm: false, lines: false },
  });
  ajv.addFormat('media-range', true);
  addFormats(ajv, { mode: 'fast' });
  for (const name of ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password']) {
    if (!ajv.formats[name]) ajv.addFormat(name, true);
  }
  ajv.addSchema({ $id: COMPONENTS_ID, components: rewriteRefs(doc.components ?? {}) });
  return ajv;
}

const general = ajvFor(true);
const body = ajvFor(false);
const routes = [];
let n = 0;
for (const [path, item] of Object.entries(doc.paths ?? {})) {
  const shared = item.parameters ?? [];
  for (const method of METHODS) {
    const op = item[method];
    if (!op) continue;
    const id = `op${n++}`;
    const schemas = { query: {}, headers: {}, params: {}, cookies: {} };
    const allowEmpty = [];
    const allowReserved = [];
    const commaLists = [];
    // Operation parameters override path-item ones of the same name and place.
    const params = new Map();
    for (const p of [...shared, ...(op.parameters ?? [])].map(deref)) params.set(`${p.in}:${p.name}`, p);
    for (const p of params.values()) {
      const field = IN[p.in];
      const name = p.in === 'header' ? p.name.toLowerCase() : p.name;
      schemas[field].type = 'object';
      schemas[field].properties ??= {};
      schemas[field].properties[name] = rewriteRefs(p.schema ?? {});
      if (p.required) {
        schemas[field].required ??= [];
        schemas[field].required.push(name);
      }
      if (p.in === 'query' && p.allowEmptyValue) allowEmpty.push(name);
      if (p.in === 'query' && p.allowReserved) allowReserved.push(name);
      // Form style explodes unless told not to; an unexploded value is a comma-separated list.
      if (p.in === 'query' && p.explode === false) commaLists.push(name);
    }
    general.addSchema(
      {
        $id: `general:${id}`,
        required: ['query', 'headers', 'params'],
        properties: { ...schemas, body: {} },
      },
      id,
    );
    const rb = deref(op.requestBody);
    let content;
    if (rb?.content) {
      const json = rb.content['application/json'];
      if (!json || Object.keys(rb.content).length !== 1)
        throw new Error(
          `${method.toUpperCase()} ${path}: only application/json request bodies are supported`,
        );
      const schema = json.schema ?? {};
      const resolved = deref(schema);
      content = { required: rb.required === false ? false : rb.required === true ? true : undefined };
      body.addSchema(
        {
          $id: `body:${id}`,
          properties: { query: {}, headers: {}, params: {}, cookies: {}, body: rewriteRefs(schema) },
          ...(resolved?.required && resolved.format !== 'binary' ? { required: ['body'] } : {}),
        },
        id,
      );
    }
    routes.push({
      id,
      method: method.toUpperCase(),
      path,
      query: Object.keys(schemas.query.properties ?? {}),
      allowEmpty,
      allowReserved,
      commaLists,
      body: content ?? null,
    });
  }
}

const refs = Object.fromEntries(routes.map((r) => [r.id, r.id]));
const bodyRefs = Object.fromEntries(routes.filter((r) => r.body).map((r) => [r.id, r.id]));

/** Ajv's CommonJS standalone code as a module body: `require` from createRequire, `exports` local. */
function moduleBody(ajv, exportsName, named) {
  const code = standaloneCode(ajv, named);
  return `const ${exportsName}: Record<string, any> = (() => {\nconst exports: Record<string, any> = {};\nconst module = { exports };\n${code.replace(/^"use strict";/, '')}\nreturn module.exports;\n})();`;
}

const out = [
  '// @ts-nocheck',
  '// Generated from openapi/openapi.yaml by scripts/openapi-validators.mjs (npm run generate:openapi). Do not edit.',
  "import { createRequire } from 'node:module';",
  '',
  'const require = createRequire(import.meta.url);',
  '',
  moduleBody(general, 'generalValidators', refs),
  '',
  moduleBody(body, 'bodyValidators', bodyRefs),
  '',
  '/** The documented operations, in document order. */',
  `export const ROUTES = ${JSON.stringify(routes, null, 1)};`,
  '',
  'export { bodyValidators, generalValidators };',
  '',
].join('\n');
writeFileSync(join(root, 'src', 'gen', 'openapi-validators.ts'), out);
