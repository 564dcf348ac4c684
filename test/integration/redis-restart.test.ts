// The embedded Redis is supervised: killed with SIGKILL, it is restarted on the same port
// with its AOF, the API and the worker reconnect by themselves, and nothing is lost. While
// it is down, requests get 503 REDIS_UNAVAILABLE with Retry-After, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';

const stack = useStack();

test('kill -9 the embedded Redis: it comes back with every dataset, model and job', async () => {
  const api = request(stack.app.server);
  const ds = (await api.post('/v1/datasets').send({ name: 'keep', x: [[1], [2], [3], [4]], y: [2, 4, 6, 8] }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 1, input_shape: [1] }] },
    compile: { optimizer: 'sgd', loss: 'mse' },
  }).expect(201)).body;
  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 2 }).expect(202)).body.id);
  assert.equal(job.status, 'completed');
  // appendfsync everysec: give the AOF its second before pulling the plug.
  await new Promise((r) => setTimeout(r, 1500));
  const oldPid = stack.redis.pid!;
  process.kill(oldPid, 'SIGKILL');

  const end = Date.now() + 30_000;
  let health;
  do {
    await new Promise((r) => setTimeout(r, 200));
    health = await api.get('/health');
  } while ((health.status !== 200 || health.body.workers < 1) && Date.now() < end);
  assert.equal(health.status, 200, 'health recovers');
  assert.notEqual(stack.redis.pid, oldPid, 'a new redis-server process');

  assert.equal((await api.get(`/v1/datasets/${ds.id}`).expect(200)).body.samples, 4);
  assert.equal((await api.get(`/v1/models/${model.id}`).expect(200)).body.versions.length, 1);
  assert.equal((await api.get(`/v1/jobs/${job.id}`).expect(200)).body.status, 'completed');
  // The worker reconnected too: a new job runs.
  const again = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 1 }).expect(202)).body.id);
  assert.equal(again.status, 'completed');
  assert.equal(again.base_version, 1);
});

test('while Redis is down: 503 with Retry-After on every kind of request, then service again', async () => {
  const api = request(stack.app.server);
  stack.redis.preventRestart();
  process.kill(stack.redis.pid!, 'SIGKILL');
  const end = Date.now() + 10_000;
  let res;
  do {
    await new Promise((r) => setTimeout(r, 100));
    res = await api.get('/v1/models');
  } while (res.status !== 503 && Date.now() < end);
  assert.equal(res.status, 503);
  assert.equal(res.body.error.code, 'REDIS_UNAVAILABLE');
  assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After');
  for (const [method, url, body] of [
    ['post', '/v1/datasets', { name: 'down', x: [[1]], y: [1] }],
    ['get', '/v1/jobs', undefined],
    ['get', '/v1/datasets/ds_0mx9x00000000000', undefined],
    ['post', '/v1/models', { spec: { type: 'sequential', layers: [{ type: 'Dense', units: 1, input_shape: [1] }] } }],
  ] as const) {
    const r = body ? await (api as any)[method](url).send(body) : await (api as any)[method](url);
    assert.equal(r.status, 503, `${method} ${url}: ${r.status} ${r.text}`);
    assert.ok(r.headers['retry-after'], `${method} ${url} has Retry-After`);
  }
  const health = await api.get('/health');
  assert.equal(health.status, 503);
  await stack.redis.start();
  const back = Date.now() + 30_000;
  do {
    await new Promise((r) => setTimeout(r, 200));
    res = await api.get('/v1/models');
  } while (res.status !== 200 && Date.now() < back);
  assert.equal(res.status, 200, 'the API reconnected');
});
