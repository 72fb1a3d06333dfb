import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { guard } from '../http/guard.js';
import { buildOpenApiDocument } from './openapi.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const swaggerDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const ASSETS: Record<string, { file: string; type: string }> = {
  'swagger-ui.css': { file: path.join(swaggerDir, 'swagger-ui.css'), type: 'text/css' },
  'swagger-ui-bundle.js': { file: path.join(swaggerDir, 'swagger-ui-bundle.js'), type: 'text/javascript' },
  'favicon-32x32.png': { file: path.join(swaggerDir, 'favicon-32x32.png'), type: 'image/png' },
  'init.js': { file: path.join(here, '..', 'static', 'api-docs', 'init.js'), type: 'text/javascript' },
};
const VERSION = (JSON.parse(readFileSync(path.join(here, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flowgate API reference</title>
<link rel="stylesheet" href="/docs/api/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/api/assets/favicon-32x32.png">
</head>
<body>
<noscript>This page renders <a href="/openapi.json">/openapi.json</a> with JavaScript; the document itself is plain JSON.</noscript>
<div id="swagger-ui"></div>
<script src="/docs/api/assets/swagger-ui-bundle.js"></script>
<script src="/docs/api/assets/init.js"></script>
</body>
</html>
`;

/**
 * `GET /openapi.json` (the OpenAPI 3.1 document, built once from the routers' guards) and
 * `GET /docs/api` (a page rendering it with Swagger UI from the swagger-ui-dist package, served
 * from this origin: no CDN, so it works offline and under the dashboard's strict CSP).
 */
export function docsRoutes(config: Config, routers: () => Router[]): Router {
  const r = new Router();
  let doc: string | undefined;
  r.get(
    '/openapi.json',
    guard(
      {
        operationId: 'openapi',
        summary: 'This document (OpenAPI 3.1)',
        tags: ['Operations'],
        access: 'public',
        responses: { 200: { description: 'The OpenAPI document', schema: z.looseObject({ openapi: z.string() }) } },
      },
      async (ctx) => {
        doc ??= JSON.stringify(buildOpenApiDocument({ issuer: config.issuer, version: VERSION, routers: [...routers(), r] }));
        ctx.type = 'application/json';
        ctx.set('Cache-Control', 'no-cache');
        ctx.body = doc;
      },
    ),
  );
  r.get('/docs/api', (ctx) => {
    ctx.type = 'html';
    ctx.body = PAGE;
  });
  const files = new Map<string, Buffer>();
  r.get('/docs/api/assets/:file', (ctx) => {
    const asset = ASSETS[ctx.params.file];
    if (!asset) return;
    if (!files.has(ctx.params.file)) files.set(ctx.params.file, readFileSync(asset.file));
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = files.get(ctx.params.file);
  });
  return r;
}
