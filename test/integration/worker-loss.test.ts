// A worker killed with SIGKILL mid-fit: the supervisor restarts it, BullMQ's stalled check
// hands the job out again and it resumes from its newest checkpoint, finishing with the
// same history as a run that was never interrupted. SIGTERM makes the worker checkpoint at
// its next batch end and give the job back. Killed more often than JOB_ATTEMPTS allows,
// the job fails as WORKER_LOST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { watchJob } from '../helpers/ws.ts';

const stack = useStack({ env: { WORKER_LOCK_MS: '1500', JOB_ATTEMPTS: '2' } });

async function setup() {
  const api = request(stack.app.server);
  // Big enough that a fit outlasts the time a test needs to see an event and send a signal.
  const x = Array.from({ length: 24000 }, (_, i) => [Math.sin(i), Math.cos(i)]);
  const ds = (await api.post('/v1/datasets').send({ name: 'loss', x, y: x.map((r) => r[0] * r[1]) }).expect(201)).body;
  const { model } = await setupModel(api);
  return { api, ds, model };
}

/** Kills the worker process once the job has reached its epoch `epoch`. */
async function killWorkerAt(jobId: string, epoch: number) {
  const watch = watchJob(stack.url, jobId);
  await watch.until((e) => e.type === 'epoch' && e.epoch === epoch, 120);
  watch.socket.close();
  process.kill(stack.workers[0].pid!, 'SIGKILL');
}

const FIT = { epochs: 6, batch_size: 8, validation_split: 0.2, seed: 5 };

/** A fit of a fresh model that nothing interrupts: the reference history. */
async function referenceHistory(api: ReturnType<typeof request>, dsId: string) {
  const { model } = await setupModel(api);
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: dsId, ...FIT }).expect(202)).body;
  const done = await waitForJob(stack.app, job.id, {}, 120);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  return done.history;
}

async function setupModel(api: ReturnType<typeof request>) {
  const model = (await api.post('/v1/models').send({
    // Wide enough that an epoch lasts a few tenths of a second on the dense fast path too.
    spec: { type: 'sequential', layers: [
      { type: 'Dense', units: 256, activation: 'tanh', input_shape: [2] }, { type: 'Dense', units: 256, activation: 'tanh' }, { type: 'Dense', units: 1 }] },
    compile: { optimizer: 'adam', loss: 'mse', metrics: ['mae'] },
  }).expect(201)).body;
  return { model };
}

/**
 * The same history to float32 precision: the resumed run repeats the same computation; a
 * worker process started later may differ in the last bit of a reduction, nothing more.
 */
function assertSameHistory(got: Record<string, number[]>, want: Record<string, number[]>) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const [key, values] of Object.entries(want)) {
    assert.equal(got[key]!.length, values.length, key);
    values.forEach((v, i) => assert.ok(Math.abs(got[key]![i]! - v) <= 1e-6 * Math.max(1, Math.abs(v)), `${key}[${i}]: ${got[key]![i]} vs ${v}`));
  }
}

/** Each epoch announced exactly once, in order. */
function assertEpochsOnce(events: any[], epochs: number) {
  assert.deepEqual(events.filter((e) => e.type === 'epoch').map((e) => e.epoch), Array.from({ length: epochs }, (_, i) => i));
}

test('kill -9 the worker mid-fit: the job resumes from its checkpoint with an unbroken history', async () => {
  const { api, ds } = await setup();
  const reference = await referenceHistory(api, ds.id);
  const { model } = await setupModel(api);
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, ...FIT }).expect(202)).body;
  await killWorkerAt(job.id, 1);
  const done = await waitForJob(stack.app, job.id, {}, 120);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  assert.equal(done.attempts, 2, 'the second start of the job');
  assert.equal(done.model_version, 1);
  // Same weights, optimizer state and per-epoch order after the resume: the same numbers.
  assertSameHistory(done.history, reference);
  const { events } = await watchJob(stack.url, job.id).closed;
  const resumed = events.filter((e) => e.type === 'resumed');
  assert.equal(resumed.length, 1);
  assert.ok(resumed[0].epoch >= 2 && resumed[0].attempt === 2, JSON.stringify(resumed[0]));
  assertEpochsOnce(events, 6);
  assert.deepEqual(events.at(-1).history, done.history);
});

test('SIGTERM: the worker checkpoints at a batch end, gives the job back, and it resumes mid-epoch', async () => {
  const { api, ds } = await setup();
  const reference = await referenceHistory(api, ds.id);
  const { model } = await setupModel(api);
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, ...FIT }).expect(202)).body;
  const watch = watchJob(stack.url, job.id);
  await watch.until((e) => e.type === 'batch' && e.epoch === 1, 120);
  process.kill(stack.workers[0].pid!, 'SIGTERM');
  const back = await watch.until((e) => e.type === 'status' && e.status === 'queued' && e.seq > 1, 60);
  assert.match(back.reason, /shutting down/);
  // The supervisor starts a new worker (the old one exited cleanly); it resumes the job.
  const { events } = await watch.closed;
  const done = await waitForJob(stack.app, job.id, {}, 120);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  assert.equal(done.attempts, 2);
  assertSameHistory(done.history, reference);
  const resumed = events.find((e) => e.type === 'resumed');
  assert.ok(resumed && resumed.batch > 0, `resumed inside an epoch: ${JSON.stringify(resumed)}`);
  assertEpochsOnce(events, 6);
});

test('a job that kills its worker more often than BullMQ allows fails as WORKER_LOST', async () => {
  const { api, ds, model } = await setup();
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 50, batch_size: 8 }).expect(202)).body;
  await killWorkerAt(job.id, 0);
  // The supervisor restarts the worker; the stalled check gives the job out again; kill it again.
  const watch = watchJob(stack.url, job.id);
  const restarted = await watch.until((e) => e.type === 'status' && e.status === 'running' && e.attempt === 2, 120);
  await watch.until((e) => e.type === 'epoch' && e.seq > restarted.seq, 120);
  process.kill(stack.workers[0].pid!, 'SIGKILL');
  const { events } = await watch.closed;
  const done = await waitForJob(stack.app, job.id, {}, 120);
  assert.equal(done.status, 'failed');
  assert.equal(done.error.code, 'WORKER_LOST');
  assert.match(done.error.message, /stalled/);
  assert.deepEqual(events.at(-1).status, 'failed');
});
