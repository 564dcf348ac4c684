// The events WebSocket (live, late replay, ?since= resume) and cancelling jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { buildApp } from '../../src/app.ts';
import { watchJob } from '../helpers/ws.ts';

const stack = useStack();
let datasetId: string;
let modelId: string;
// A random regression problem, big enough that an epoch takes a noticeable time.
const N = 2000;
const x = Array.from({ length: N }, (_, i) => Array.from({ length: 8 }, (_, j) => Math.sin(i * 0.37 + j)));
const y = x.map((r) => [r.reduce((a, b) => a + b, 0) / 8]);

// Made once, by the first test that fits (node 20 runs top-level hooks eagerly, so no second before()).
let made: Promise<void> | undefined;
const dataAndModel = () => (made ??= (async () => {
  const api = request(stack.app.server);
  datasetId = (await api.post('/v1/datasets').send({ name: 'waves', x, y }).expect(201)).body.id;
  modelId = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 32, activation: 'tanh', input_shape: [8] }, { type: 'Dense', units: 1 }] },
    compile: { optimizer: 'sgd', loss: 'mse', metrics: ['mae'] },
  }).expect(201)).body.id;
})());

const fit = async (body: Record<string, unknown>) => {
  await dataAndModel();
  return (await request(stack.app.server).post(`/v1/models/${modelId}/fit`).send({ dataset_id: datasetId, ...body }).expect(202)).body;
};

test('live events, then full replay for a late client, then ?since= resume', async () => {
  const job = await fit({ epochs: 6, batch_size: 16 });
  const early = watchJob(stack.url, job.id);
  // A second client joins mid-training: it replays what it missed, then goes live.
  await early.until((e) => e.type === 'epoch' && e.epoch === 1);
  const middle = watchJob(stack.url, job.id);
  const [a, b] = await Promise.all([early.closed, middle.closed]);
  assert.deepEqual(b.events, a.events, 'a client that joins mid-fit sees exactly what the first saw');
  const types = new Set(a.events.map((e) => e.type));
  for (const t of ['status', 'batch', 'epoch', 'done']) assert.ok(types.has(t), `has ${t} events`);
  assert.deepEqual(a.events.filter((e) => e.type === 'status').map((e) => e.status), ['queued', 'running', 'completed']);
  assert.equal(a.events.filter((e) => e.type === 'epoch').length, 6);
  const batch = a.events.find((e) => e.type === 'batch');
  assert.equal(typeof batch.logs.loss, 'number');
  assert.equal(typeof batch.logs.mae, 'number');
  a.events.forEach((e, i) => assert.equal(e.seq, i + 1));

  // After the job: a late client replays everything; ?since=k gives only what follows k.
  const late = await watchJob(stack.url, job.id).closed;
  assert.deepEqual(late.events, a.events);
  const k = Math.floor(a.events.length / 2);
  const resumed = await watchJob(stack.url, job.id, { since: k }).closed;
  assert.deepEqual(resumed.events, a.events.slice(k));
  const job2 = await waitForJob(stack.app, job.id);
  assert.deepEqual(a.events.at(-1).history, job2.history);
});

test('an unknown job answers 404 before the upgrade', async () => {
  const res = await request(stack.app.server).get('/v1/jobs/job_0000000000000000/events');
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, 'NOT_FOUND');
});

test('cancel a running job: it stops within seconds and the model keeps its last version', async () => {
  const api = request(stack.app.server);
  const first = await waitForJob(stack.app, (await fit({ epochs: 1, batch_size: 64 })).id);
  const versionsBefore = (await api.get(`/v1/models/${modelId}`).expect(200)).body.versions.map((v: any) => v.version);
  assert.equal(versionsBefore.at(-1), first.model_version);
  const job = await fit({ epochs: 500, batch_size: 8 });
  const watch = watchJob(stack.url, job.id);
  await watch.until((e) => e.type === 'epoch');
  const asked = Date.now();
  await api.post(`/v1/jobs/${job.id}/cancel`).expect(202);
  const { events } = await watch.closed;
  const stoppedIn = Date.now() - asked;
  const done = await waitForJob(stack.app, job.id);
  assert.equal(done.status, 'cancelled');
  assert.equal(events.at(-1).type, 'done');
  assert.equal(events.at(-1).status, 'cancelled');
  assert.ok(stoppedIn < 10_000, `stopped ${stoppedIn} ms after the cancel`);
  assert.ok(done.history.loss.length >= 1 && done.history.loss.length < 500);
  const model = (await api.get(`/v1/models/${modelId}`).expect(200)).body;
  assert.deepEqual(model.versions.map((v: any) => v.version), versionsBefore, 'a cancelled fit adds no version');
  const again = await api.post(`/v1/jobs/${job.id}/cancel`).expect(409);
  assert.equal(again.body.error.code, 'JOB_NOT_CANCELLABLE');

  // The worker is free for the next job.
  const next = await waitForJob(stack.app, (await fit({ epochs: 1, batch_size: 64 })).id);
  assert.equal(next.status, 'completed');
});

test('cancel a queued job: it never runs', async () => {
  const api = request(stack.app.server);
  const blocker = await fit({ epochs: 500, batch_size: 8 });
  const queued = await fit({ epochs: 1 });
  const res = await api.post(`/v1/jobs/${queued.id}/cancel`).expect(202);
  assert.equal(res.body.status, 'cancelled');
  const events = (await watchJob(stack.url, queued.id).closed).events;
  assert.deepEqual(events.map((e) => [e.type, e.status]), [['status', 'queued'], ['status', 'cancelled'], ['done', 'cancelled']]);
  await api.post(`/v1/jobs/${blocker.id}/cancel`).expect(202);
  assert.equal((await waitForJob(stack.app, blocker.id)).status, 'cancelled');
  const job = (await api.get(`/v1/jobs/${queued.id}`).expect(200)).body;
  assert.equal(job.started_at, null);
  const listed = (await api.get('/v1/jobs?status=cancelled').expect(200)).body.items.map((j: any) => j.id);
  assert.ok(listed.includes(queued.id) && listed.includes(blocker.id));
});

test('deleting a model while it trains: the job fails saying so, and no record or file is left', async () => {
  const api = request(stack.app.server);
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 4, input_shape: [8] }, { type: 'Dense', units: 1 }] },
    compile: { optimizer: 'sgd', loss: 'mse' },
  }).expect(201)).body;
  await dataAndModel();
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: datasetId, epochs: 10, batch_size: 8 }).expect(202)).body;
  const watch = watchJob(stack.url, job.id);
  await watch.until((e) => e.type === 'batch');
  await api.delete(`/v1/models/${model.id}`).expect(204);
  const done = await waitForJob(stack.app, job.id);
  assert.equal(done.status, 'failed');
  assert.match(done.error.message, /deleted/);
  await api.get(`/v1/models/${model.id}`).expect(404);
  assert.equal(fs.existsSync(path.join(stack.config.dataDir, 'tenants', 'default', 'models', model.id)), false);
});

test('an API shutting down closes its event sockets with 1001 (the job goes on)', async () => {
  // A second API on the same Redis, as a deployment with several API replicas has.
  const second = await buildApp(stack.config, { logger: false });
  await second.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(second.server.address() as { port: number }).port}`;
  const job = await fit({ epochs: 200, batch_size: 16 });
  const watch = watchJob(url, job.id);
  await watch.until((e) => e.type === 'epoch', 60);
  await second.close();
  const { code } = await watch.closed;
  assert.equal(code, 1001);
  // The job is untouched by one API going away: cancel it through the first one.
  await request(stack.app.server).post(`/v1/jobs/${job.id}/cancel`).expect(202);
  assert.equal((await waitForJob(stack.app, job.id)).status, 'cancelled');
});
