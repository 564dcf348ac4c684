// A worker killed with SIGKILL mid-fit: the supervisor restarts it, BullMQ's stalled check
// hands the job out again and it completes (from its first epoch: checkpoints are the
// fault-tolerance issue). Killed once more than BullMQ allows, the job fails as WORKER_LOST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { watchJob } from '../helpers/ws.ts';

const stack = useStack({ env: { WORKER_LOCK_MS: '1500', JOB_ATTEMPTS: '2' } });

async function setup() {
  const api = request(stack.app.server);
  const x = Array.from({ length: 1000 }, (_, i) => [Math.sin(i), Math.cos(i)]);
  const ds = (await api.post('/v1/datasets').send({ name: 'loss', x, y: x.map((r) => r[0] * r[1]) }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 16, activation: 'tanh', input_shape: [2] }, { type: 'Dense', units: 1 }] },
    compile: { optimizer: 'adam', loss: 'mse' },
  }).expect(201)).body;
  return { api, ds, model };
}

/** Kills the worker process once the job has reached its epoch `epoch`. */
async function killWorkerAt(jobId: string, epoch: number) {
  const watch = watchJob(stack.url, jobId);
  await watch.until((e) => e.type === 'epoch' && e.epoch === epoch, 120);
  watch.socket.close();
  process.kill(stack.workers[0].pid!, 'SIGKILL');
}

test('kill -9 the worker mid-fit: the job is handed out again and completes', async () => {
  const { api, ds, model } = await setup();
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 6, batch_size: 8 }).expect(202)).body;
  await killWorkerAt(job.id, 1);
  const done = await waitForJob(stack.app, job.id, {}, 120);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  assert.equal(done.attempts, 2, 'the second start of the job');
  assert.equal(done.history.loss.length, 6);
  assert.equal(done.model_version, 1);
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
