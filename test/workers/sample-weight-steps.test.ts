/**
 * Keras's sample_weight and steps_per_epoch in our training loop: weighted losses by hand
 * (SUM_OVER_BATCH_SIZE), class_weight x sample_weight, unweighted metrics, the validation
 * split's weights, disk-fed weights, and the batch stream of steps_per_epoch (passes,
 * running out, resuming).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { SpecError } from '../../src/errors.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { lossFunction } from '../../src/model-spec/losses.ts';
import { createDataset } from '../../src/datasets/stage.ts';
import type { ArrayColumn } from '../../src/model-spec/types.ts';
import { evaluate, fit, type DataColumn, type LoopState } from '../../workers/train-loop.ts';

let dataDir: string;
before(async () => {
  await initBackend('cpu');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-sw-'));
});
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function column(rows: number[][] | number[], shape: number[]): ArrayColumn {
  return { shape, data: Float32Array.from((rows as Array<number | number[]>).flat()) };
}

function near(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
}

/** Dense(1) with w = [1, -1], b = 0.5: on x = [[1, 2], [0, 1], [3, 0], [1, 1]] predicts [-0.5, -0.5, 3.5, 0.5]. */
function fixedDense(): tf.LayersModel {
  return tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2], weights: [tf.tensor2d([[1], [-1]]), tf.tensor1d([0.5])] })] });
}
const X4 = [[1, 2], [0, 1], [3, 0], [1, 1]];
const Y4 = [0, 1, 3, 2];
// Squared errors [0.25, 2.25, 0.25, 2.25]; absolute errors [0.5, 1.5, 0.5, 1.5].
const SE = [0.25, 2.25, 0.25, 2.25];
const MSE = resolveCompile({ optimizer: { type: 'sgd', learning_rate: 1e-12 }, loss: 'mse', metrics: ['mae'] }, [{ name: 'o', shape: [1] }]);

describe('sample_weight', () => {
  test('the loss is sum(loss * w) / batch size; metrics are not weighted (evaluate and fit)', async () => {
    const model = fixedDense();
    const x = [column(X4, [2])];
    const y = [column(Y4, [])];
    // Batches of 2: [0, 1] leaves out samples 0 and 2, each batch is still divided by 2.
    const w = column([0, 1, 0, 1], []);
    const ev = await evaluate(model, MSE, ['o'], x, y, 2, w);
    near(ev.loss!, (SE[1]! + SE[3]!) / 4, 1e-6, 'weighted mse');
    near(ev.mae!, 4 / 4, 1e-6, 'mae is not weighted');
    const twice = await evaluate(model, MSE, ['o'], x, y, 4, column([2, 2, 2, 2], []));
    near(twice.loss!, 2 * SE.reduce((a, b) => a + b) / 4, 1e-6, 'weights 2 double the loss');
    const plain = await evaluate(model, MSE, ['o'], x, y, 4);
    near(plain.loss!, SE.reduce((a, b) => a + b) / 4, 1e-6, 'no weights');
    // fit: the same with a negligible learning rate; shape [1] weights are accepted too.
    const res = await fit(model, MSE, ['o'], x, y, { epochs: 1, batchSize: 2, shuffle: false, sampleWeight: column([0, 1, 0, 1], [1]) });
    near(res.history.loss![0]!, (SE[1]! + SE[3]!) / 4, 1e-5, 'fit weighted loss');
    near(res.history.mae![0]!, 1, 1e-5, 'fit mae not weighted');
    await assert.rejects(fit(model, MSE, ['o'], x, y, { epochs: 1, batchSize: 2, sampleWeight: column([1, 1, -1, 1], []) }), (e: unknown) => e instanceof SpecError && e.path === 'sample_weight');
    await assert.rejects(fit(model, MSE, ['o'], x, y, { epochs: 1, batchSize: 2, sampleWeight: column([1, 1, 1], []) }), (e: unknown) => e instanceof SpecError && e.path === 'sample_weight');
    model.dispose();
  });

  test('class_weight and sample_weight multiply', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, activation: 'softmax', inputShape: [2], weights: [tf.tensor2d([[0.3, -0.2, 0.1], [0.5, 0.4, -0.6]]), tf.tensor1d([0, 0.1, -0.1])] })] });
    const compiled = resolveCompile({ optimizer: { type: 'sgd', learning_rate: 1e-12 }, loss: 'sparse_categorical_crossentropy' }, [{ name: 'o', shape: [3] }]);
    const xs = [[1, 0], [0, 1], [1, 1], [-1, 0.5], [0.3, -2], [2, 2]];
    const labels = [0, 1, 2, 0, 1, 2];
    const sw = [0.5, 2, 1, 0, 3, 1.5];
    const cw: Record<string, number> = { '0': 1, '1': 3, '2': 0.5 };
    const res = await fit(model, compiled, ['o'], [column(xs, [2])], [column(labels, [])], { epochs: 1, batchSize: 6, classWeight: cw, shuffle: false, sampleWeight: column(sw, []) });
    const expected = tf.tidy(() => {
      const per = lossFunction(compiled.losses[0]!)(tf.tensor1d(labels), model.predict(tf.tensor2d(xs)) as tf.Tensor);
      return per.mul(tf.tensor1d(labels.map((l, i) => cw[String(l)]! * sw[i]!))).mean().dataSync()[0]!;
    });
    near(res.history.loss![0]!, expected, 1e-5, 'class x sample weighted loss');
    model.dispose();
  });

  test('every output of a two-output model is weighted; validation_split takes the weights\' tail', async () => {
    const input = tf.input({ shape: [2] });
    const a = tf.layers.dense({ units: 1, name: 'a', weights: [tf.tensor2d([[1], [-1]]), tf.tensor1d([0.5])] }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 1, name: 'b', weights: [tf.tensor2d([[0.5], [1]]), tf.tensor1d([0])] }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: [a, b] });
    const outs = [{ name: 'a', shape: [1] }, { name: 'b', shape: [1] }];
    const compiled = resolveCompile({ optimizer: { type: 'sgd', learning_rate: 1e-12 }, loss: ['mse', 'mae'], loss_weights: [1, 2] }, outs);
    const xs = [...X4, [2, 0], [0, 0]];
    const ya = [...Y4, 1, 0];
    const yb = [1, 0, 2, 1, 0, 3];
    const w = [1, 0, 2, 1, 3, 0.5];
    const x = [column(xs, [2])];
    const y = [column(ya, []), column(yb, [])];
    const hand = (rows: number[]) => tf.tidy(() => {
      const [pa, pb] = model.predict(tf.tensor2d(rows.map((i) => xs[i]!))) as tf.Tensor[];
      const ww = tf.tensor1d(rows.map((i) => w[i]!));
      const la = tf.losses.meanSquaredError(tf.tensor2d(rows.map((i) => [ya[i]!])), pa!, undefined, tf.Reduction.NONE).reshape([-1]).mul(ww).mean().dataSync()[0]!;
      const lb = tf.losses.absoluteDifference(tf.tensor2d(rows.map((i) => [yb[i]!])), pb!, undefined, tf.Reduction.NONE).reshape([-1]).mul(ww).mean().dataSync()[0]!;
      return { la, lb, loss: la + 2 * lb };
    });
    // validation_split 1/3: train on samples 0..3 (one batch), validate on 4..5 with weights [3, 0.5].
    const res = await fit(model, compiled, ['a', 'b'], x, y, { epochs: 1, batchSize: 4, shuffle: false, validationSplit: 1 / 3, sampleWeight: column(w, []) });
    const tr = hand([0, 1, 2, 3]);
    const va = hand([4, 5]);
    near(res.history.a_loss![0]!, tr.la, 1e-5, 'a_loss');
    near(res.history.b_loss![0]!, tr.lb, 1e-5, 'b_loss');
    near(res.history.loss![0]!, tr.loss, 1e-5, 'loss');
    near(res.history.val_loss![0]!, va.loss, 1e-5, 'val_loss weighted by the tail');
    near(res.history.val_b_loss![0]!, va.lb, 1e-5, 'val_b_loss');
    model.dispose();
  });

  test('a disk-fed dataset with a weight column trains exactly like the same data in memory', async () => {
    const n = 300;
    const xs = new Float32Array(n * 3);
    const ys = new Float32Array(n);
    const ws = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 3; j++) xs[i * 3 + j] = Math.sin(i * 1.3 + j * 0.7);
      ys[i] = xs[i * 3]! - 2 * xs[i * 3 + 2]!;
      ws[i] = (i % 5) / 2;
    }
    const dir = path.join(dataDir, 'weighted');
    const rec = await createDataset(dataDir, 't', { name: 'd', source: 'test' }, { rows: 1e9, columns: 1e6 }, async (stage) => {
      await (await stage.column('x', null, 'float32', [3])).append(xs);
      await (await stage.column('y', null, 'float32', [])).append(ys);
      await (await stage.column('w', null, 'float32', [])).append(ws);
    }, dir);
    assert.equal(rec.w_column?.file, 'w-0.f32');
    assert.equal(rec.w_column?.min, 0);
    const stored = (file: string, shape: number[]): DataColumn => ({ shape, stored: { path: path.join(dir, file), dtype: 'float32', first: 0, rows: n } });
    const make = () => tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [3], weights: [tf.tensor2d([[0.1], [0.2], [-0.3]]), tf.tensor1d([0])] })] });
    const compiled = resolveCompile({ optimizer: { type: 'adam', learning_rate: 0.01 }, loss: 'mse' }, [{ name: 'o', shape: [1] }]);
    // A small shuffle window makes the order windowed (blocks + windows) in both runs.
    const opts = { epochs: 3, batchSize: 16, seed: 5, validationSplit: 0.2, shuffleWindowBytes: 16 * 64, stepsPerEpoch: 10 };
    const m1 = make();
    const r1 = await fit(m1, compiled, ['o'], [{ shape: [3], data: xs }], [{ shape: [], data: ys }], { ...opts, sampleWeight: { shape: [], data: ws } });
    const m2 = make();
    const r2 = await fit(m2, compiled, ['o'], [stored('x-0.f32', [3])], [stored('y-0.f32', [])], { ...opts, sampleWeight: stored('w-0.f32', []) });
    assert.deepEqual(r2.history, r1.history);
    assert.deepEqual(Array.from(m2.getWeights()[0]!.dataSync()), Array.from(m1.getWeights()[0]!.dataSync()));
    // Unweighted, the history differs.
    const m3 = make();
    const r3 = await fit(m3, compiled, ['o'], [{ shape: [3], data: xs }], [{ shape: [], data: ys }], opts);
    assert.notDeepEqual(r3.history.loss, r1.history.loss);
    m1.dispose(); m2.dispose(); m3.dispose();
  });
});

describe('steps_per_epoch', () => {
  const n = 64;
  const xs: number[][] = [];
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    xs.push([Math.cos(i), Math.sin(i * 0.5)]);
    ys.push(xs[i]![0]! * 2 - xs[i]![1]!);
  }
  const x = [column(xs, [2])];
  const y = [column(ys, [])];
  const make = () => tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2], weights: [tf.tensor2d([[0.1], [-0.2]]), tf.tensor1d([0])] })] });
  const compiled = resolveCompile({ optimizer: { type: 'sgd', learning_rate: 0.05 }, loss: 'mse' }, [{ name: 'o', shape: [1] }]);
  const weights = (m: tf.LayersModel) => m.getWeights().map((t) => Array.from(t.dataSync()));

  test('half the batches per pass: 4 epochs see exactly 2 passes (the same stream as 2 plain epochs)', async () => {
    // 64 samples, batch 8: 8 batches per pass; S = 4.
    const m1 = make();
    const batches: Array<[number, number]> = [];
    let samples = 0;
    const r1 = await fit(m1, compiled, ['o'], x, y, { epochs: 4, batchSize: 8, seed: 3, stepsPerEpoch: 4 }, {
      onBatchEnd: (epoch, batch) => {
        batches.push([epoch, batch]);
        samples += 8;
      },
    });
    assert.equal(r1.epochsRun, 4);
    assert.equal(r1.outOfData, undefined);
    assert.equal(r1.history.loss!.length, 4);
    assert.equal(samples, 2 * n);
    assert.deepEqual(batches.filter(([e]) => e === 3).map(([, b]) => b), [0, 1, 2, 3]);
    const m2 = make();
    const r2 = await fit(m2, compiled, ['o'], x, y, { epochs: 2, batchSize: 8, seed: 3 });
    assert.equal(r2.epochsRun, 2);
    assert.deepEqual(weights(m1), weights(m2));
    // Without steps_per_epoch, S = batches per pass: the same as before.
    const m3 = make();
    await fit(m3, compiled, ['o'], x, y, { epochs: 2, batchSize: 8, seed: 3, stepsPerEpoch: 8 });
    assert.deepEqual(weights(m3), weights(m2));
    m1.dispose(); m2.dispose(); m3.dispose();
  });

  test('running out of data stops training (the partial epoch is logged; an empty one is not)', async () => {
    // 8 batches per pass, 2 epochs -> 16 batches; S = 12: epoch 0 runs 12, epoch 1 runs 4, then the data is out.
    const m1 = make();
    let last: [number, number] = [-1, -1];
    const r1 = await fit(m1, compiled, ['o'], x, y, { epochs: 2, batchSize: 8, seed: 3, stepsPerEpoch: 12 }, { onBatchEnd: (e, b) => { last = [e, b]; } });
    assert.deepEqual(last, [1, 3]);
    assert.equal(r1.epochsRun, 2);
    assert.deepEqual(r1.outOfData, { epoch: 1, batch: 4, batchesPerPass: 8, stepsPerEpoch: 12 });
    // 3 epochs -> 24 batches, S = 12 x 3 = 36: epoch 2 would start past the end, so 2 epochs run.
    const m2 = make();
    const r2 = await fit(m2, compiled, ['o'], x, y, { epochs: 3, batchSize: 8, seed: 3, stepsPerEpoch: 12 });
    assert.equal(r2.epochsRun, 2);
    assert.equal(r2.history.loss!.length, 2);
    assert.deepEqual(r2.outOfData, { epoch: 2, batch: 0, batchesPerPass: 8, stepsPerEpoch: 12 });
    await assert.rejects(fit(m2, compiled, ['o'], x, y, { epochs: 1, batchSize: 8, stepsPerEpoch: 0 }), (e: unknown) => e instanceof SpecError && e.path === 'steps_per_epoch');
    m1.dispose(); m2.dispose();
  });

  test('a run resumed mid-epoch from a checkpoint ends with the same weights and history', async () => {
    const opts = { epochs: 4, batchSize: 8, seed: 9, stepsPerEpoch: 5 };
    const m1 = make();
    const full = await fit(m1, compiled, ['o'], x, y, opts);
    assert.equal(full.epochsRun, 4);
    const m2 = make();
    let saved: LoopState | null = null;
    let savedWeights: tf.Tensor[] = [];
    let count = 0;
    const first = await fit(m2, compiled, ['o'], x, y, opts, {
      checkpointDue: () => ++count === 7, // epoch 1, after its batch 1 (stream batch 6)
      onCheckpoint: async (s) => {
        saved = s;
        savedWeights = m2.getWeights().map((t) => t.clone());
      },
      shouldStop: () => saved !== null,
    });
    assert.equal(first.stopped, true);
    const s = saved as unknown as LoopState;
    assert.equal(s.epoch, 1);
    assert.equal(s.batch, 2);
    const m3 = make();
    m3.setWeights(savedWeights);
    const rest = await fit(m3, compiled, ['o'], x, y, { ...opts, resume: { epoch: s.epoch, batch: s.batch, sums: s.sums, seen: s.seen } });
    assert.deepEqual(weights(m3), weights(m1));
    assert.deepEqual(rest.history.loss, full.history.loss!.slice(1));
    tf.dispose(savedWeights);
    m1.dispose(); m2.dispose(); m3.dispose();
  });
});
