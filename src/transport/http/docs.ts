/**
 * The API contract and its reference page: GET /openapi.yaml serves
 * openapi/openapi.yaml; GET /docs/ serves Swagger UI from the installed
 * swagger-ui-dist package (no CDN) under a Content-Security-Policy that
 * allows no request to leave this server.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';
import { OPENAPI_JSON } from '../../gen/openapi-document.js';

/** Where the OpenAPI document lives (openapi/openapi.yaml at the project root). */
export const OPENAPI_PATH = fileURLToPath(new URL('../../../openapi/openapi.yaml', import.meta.url));

let cached: { text: string; document: Record<string, unknown> } | undefined;

/**
 * The OpenAPI document, as text and parsed (read once). Parsed from its JSON form generated
 * at build time (src/gen/openapi-document.ts: a YAML parse costs start-up 200-450 ms of CPU);
 * CI regenerates it and fails when it differs from openapi/openapi.yaml.
 */
export function openApiDocument(): { text: string; document: Record<string, unknown> } {
  if (!cached) {
    const text = readFileSync(OPENAPI_PATH, 'utf8');
    cached = { text, document: JSON.parse(OPENAPI_JSON) as Record<string, unknown> };
  }
  return cached;
}

export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // Swagger UI sets style attributes at run time.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSETS: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Portcullis API reference</title>
<link rel="stylesheet" href="swagger-ui.css">
<link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script src="swagger-ui-standalone-preset.js"></script>
<script src="init.js"></script>
</body>
</html>
`;

// No validator badge (it would call validator.swagger.io); the document is relative to /docs/.
const INIT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '../openapi.yaml',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: 'StandaloneLayout',
  });
});
`;

function swaggerDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('swagger-ui-dist/package.json'));
}

/** Routes for /openapi.yaml and /docs (open: no token needed). */
export function docsRouter(): Router {
  const router = express.Router({ strict: true });
  const { text } = openApiDocument();
  const dir = swaggerDir();
  router.get('/openapi.yaml', (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('application/yaml; charset=utf-8').send(text);
  });
  router.get('/docs', (_req, res) => res.redirect(301, '/docs/'));
  router.get('/docs/', (_req, res) => {
    res.set('Content-Security-Policy', DOCS_CSP).type('text/html; charset=utf-8').send(PAGE);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.set('Content-Security-Policy', DOCS_CSP).type('text/javascript; charset=utf-8').send(INIT);
  });
  router.get('/docs/:asset', (req, res, next) => {
    const asset = req.params.asset;
    const type = Object.hasOwn(ASSETS, asset) ? ASSETS[asset] : undefined;
    if (type === undefined) {
      next();
      return;
    }
    res.set({
      'Content-Security-Policy': DOCS_CSP,
      'Cache-Control': 'public, max-age=86400',
      'Content-Type': type,
    });
    res.sendFile(join(dir, asset));
  });
  return router;
}
