// openapi.yaml is generated from the route schemas: it must be current and valid OpenAPI 3.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import { parse } from 'yaml';
import { renderOpenApi } from '../scripts/generate-openapi.ts';

const file = new URL('../openapi.yaml', import.meta.url);

test('openapi.yaml matches the route schemas (run `npm run openapi` when this fails)', async () => {
  assert.equal(fs.readFileSync(file, 'utf8'), await renderOpenApi());
});

test('openapi.yaml is valid OpenAPI 3.1 and documents every route of API.md', async () => {
  const doc = parse(fs.readFileSync(file, 'utf8'));
  assert.equal(doc.openapi, '3.1.0');
  await SwaggerParser.validate(structuredClone(doc));
  const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${p}`));
  for (const r of [
    'GET /health', 'GET /v1/workers', 'POST /v1/datasets', 'GET /v1/datasets', 'GET /v1/datasets/{id}', 'DELETE /v1/datasets/{id}',
    'POST /v1/models', 'GET /v1/models', 'GET /v1/models/{id}', 'GET /v1/models/{id}/summary', 'DELETE /v1/models/{id}',
    'POST /v1/models/{id}/fit', 'POST /v1/models/{id}/evaluate', 'GET /v1/jobs', 'GET /v1/jobs/{id}', 'POST /v1/jobs/{id}/cancel',
    'GET /v1/jobs/{id}/events', 'POST /v1/models/{id}/predict',
  ]) assert.ok(routes.includes(r), `${r} is documented`);
});
