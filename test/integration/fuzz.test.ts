// Random, mostly wrong requests against every route: 1,000 bodies on the POST routes and
// 400 requests with odd ids, queries, methods, content types and raw bytes. Each answers a
// 4xx with an error code (or a 2xx when the dice made something valid), never a 5xx, and
// the server lives on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

const stack = useStack();
const rnd = mulberry32(2024);
const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];

/** A random JSON value, biased towards the shapes the API expects. */
function value(depth = 0): unknown {
  const kinds = depth > 3 ? ['num', 'str', 'null', 'bool'] : ['num', 'str', 'null', 'bool', 'arr', 'obj', 'arr', 'obj'];
  switch (pick(kinds)) {
    case 'num': return pick([0, -1, 1, 3, 1e308, -1e-308, 0.5, 2 ** 31, 42, 784]);
    case 'str': return pick(['', 'Dense', 'relu', 'adam', 'sequential', 'functional', 'x', 'mse', '__proto__', 'constructor', 'a'.repeat(300)]);
    case 'null': return null;
    case 'bool': return rnd() < 0.5;
    case 'arr': return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
    default: {
      const keys = ['type', 'units', 'layers', 'inputs', 'outputs', 'name', 'shape', 'input_shape', 'activation', 'x', 'y',
        'spec', 'compile', 'loss', 'optimizer', 'metrics', 'epochs', 'batch_size', 'dataset_id', 'instances', '__proto__', 'constructor'];
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 5) }, () => [pick(keys), value(depth + 1)]));
    }
  }
}

test('1,000 random bodies: never a 5xx, always an error code on a 4xx', async () => {
  const api = request(stack.app.server);
  const ds = (await api.post('/v1/datasets').send({ name: 'ok', x: [[1, 2, 3, 4]], y: [0] }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3, activation: 'softmax', input_shape: [4] }] },
    compile: { optimizer: 'adam', loss: 'sparse_categorical_crossentropy' },
  }).expect(201)).body;
  await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id }).expect(202)).body.id);
  const routes = ['/v1/datasets', '/v1/models', `/v1/models/${model.id}/fit`, `/v1/models/${model.id}/evaluate`, `/v1/models/${model.id}/predict`];
  const bodies: Array<[string, unknown]> = [];
  for (let i = 0; i < 1000; i++) {
    const route = routes[i % routes.length];
    let body = value();
    // Half the time, a nearly valid body with one part randomised.
    if (rnd() < 0.5) {
      const base: Record<string, unknown> = route === '/v1/datasets' ? { name: 'f', x: [[1, 2, 3, 4]], y: [0] }
        : route === '/v1/models' ? { spec: { type: 'sequential', layers: [{ type: 'Dense', units: 2, input_shape: [4] }] } }
          : route.endsWith('predict') ? { instances: [[1, 2, 3, 4]] } : { dataset_id: ds.id, epochs: 1 };
      const key = pick(Object.keys(base));
      base[key] = value();
      body = base;
    }
    bodies.push([route, body]);
  }
  const seen = new Map<number, number>();
  for (const [route, body] of bodies) {
    const res = await api.post(route).set('content-type', 'application/json').send(JSON.stringify(body));
    seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
    assert.ok(res.status < 500, `${route} ${JSON.stringify(body).slice(0, 200)} -> ${res.status} ${res.text.slice(0, 200)}`);
    if (res.status >= 400) assert.equal(typeof res.body.error?.code, 'string', `${route} ${res.text.slice(0, 200)}`);
  }
  assert.ok((seen.get(400) ?? 0) + (seen.get(422) ?? 0) > 500, JSON.stringify([...seen]));
  await api.get('/health').expect(200);
  // Wait for any job the dice enqueued, so the stack closes idle.
  for (const job of (await api.get('/v1/jobs?limit=500').expect(200)).body.items) await waitForJob(stack.app, job.id);
});

test('400 odd requests on every route (ids, queries, methods, content types, raw bytes): never a 5xx', async () => {
  const api = request(stack.app.server);
  const ids = ['x', 'mdl_0', '..', '%2e%2e%2f', 'a'.repeat(5000), '__proto__', 'constructor', '0'.repeat(20), 'ds_%00', '%F0%9F%92%A9', 'job_' + 'z'.repeat(40)];
  const queries = ['', '?limit=-1', '?limit=0', '?limit=abc', '?limit=100000', '?cursor=' + 'q'.repeat(300), '?status=weird', '?since=-5', '?since=abc',
    '?classes=maybe', '?version=0', '?version=-1', '?model_id[]=1', '?__proto__[x]=1', '?limit=1&limit=2'];
  const paths = (id: string) => [
    `/v1/datasets/${id}`, `/v1/models/${id}`, `/v1/models/${id}/summary`, `/v1/models/${id}/fit`, `/v1/models/${id}/evaluate`,
    `/v1/models/${id}/predict`, `/v1/jobs/${id}`, `/v1/jobs/${id}/cancel`, `/v1/jobs/${id}/events`, '/v1/jobs', '/v1/models', '/v1/datasets',
    '/v1/workers', '/health', `/v1/${id}`, `/${id}`,
  ];
  const methods = ['get', 'post', 'delete', 'put', 'patch'] as const;
  const payloads: Array<[string, string | Buffer]> = [
    ['application/json', '{"a":'], ['application/json', '[]'], ['application/json', 'null'], ['application/json', '"str"'],
    ['application/json', '{"__proto__": {"polluted": true}}'], ['text/plain', 'hello'], ['application/x-www-form-urlencoded', 'a=1&b=2'],
    ['application/octet-stream', Buffer.from([0, 255, 1, 2])], ['multipart/form-data; boundary=x', '--x\r\n\r\n--x--'],
    ['application/json', JSON.stringify({ spec: { type: 'sequential', layers: Array.from({ length: 50 }, () => ({ type: 'Dense', units: 1e9 })) } })],
  ];
  const seen = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    const method = pick([...methods]);
    const url = pick(paths(pick(ids))) + pick(queries);
    let req = api[method](url);
    if (rnd() < 0.3) req = req.set('accept', pick(['text/plain', 'application/xml', '*/*']));
    if (rnd() < 0.2) req = req.set('authorization', pick(['Bearer ', 'Bearer x', 'Basic abc', 'x'.repeat(500)]));
    let res;
    if (method !== 'get' && method !== 'delete' && rnd() < 0.8) {
      const [type, body] = pick(payloads);
      res = await req.set('content-type', type).send(body);
    } else {
      res = await req;
    }
    seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
    assert.ok(res.status < 500, `${method.toUpperCase()} ${url.slice(0, 120)} -> ${res.status} ${res.text.slice(0, 200)}`);
    if (res.status >= 400) assert.equal(typeof res.body.error?.code, 'string', `${method} ${url.slice(0, 120)} ${res.text.slice(0, 200)}`);
  }
  assert.ok((seen.get(404) ?? 0) > 50, JSON.stringify([...seen]));
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
  await api.get('/health').expect(200);
});
