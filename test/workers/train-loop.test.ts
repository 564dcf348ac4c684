/**
 * Our Keras 2 style training loop: history keys and values, loss weights, validation,
 * class_weight, initial_epoch, stopping, memory, and a small real problem (iris).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { SpecError } from '../../src/errors.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { lossFunction } from '../../src/model-spec/losses.ts';
import type { ArrayColumn, TensorInfo } from '../../src/model-spec/types.ts';
import { optimizerState } from '../../src/model-spec/optimizers.ts';
import { evaluate, fit, predict, type LoopState } from '../../workers/train-loop.ts';

before(async () => {
  await initBackend('cpu');
});

function column(rows: number[][] | number[], shape: number[]): ArrayColumn {
  return { shape, data: Float32Array.from((rows as Array<number | number[]>).flat()) };
}

/** A deterministic pseudo-random stream for test data. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

function near(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
}

/** in(3) -> h(8, relu) -> out1 (2, softmax) and out2 (1, linear). */
function twoOutputModel(): tf.LayersModel {
  const input = tf.input({ shape: [3], name: 'in' });
  const h = tf.layers.dense({ units: 8, activation: 'relu', name: 'h' }).apply(input) as tf.SymbolicTensor;
  const out1 = tf.layers.dense({ units: 2, activation: 'softmax', name: 'out1' }).apply(h) as tf.SymbolicTensor;
  const out2 = tf.layers.dense({ units: 1, name: 'out2' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: [out1, out2] });
}

function twoOutputData(n: number, seed: number): { x: ArrayColumn[]; y: ArrayColumn[] } {
  const r = rng(seed);
  const xs: number[][] = [];
  const labels: number[] = [];
  const reg: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = [r() * 2 - 1, r() * 2 - 1, r() * 2 - 1];
    xs.push(row);
    labels.push(row[0]! + row[1]! > 0 ? 1 : 0);
    reg.push(row[0]! - 2 * row[2]!);
  }
  return { x: [column(xs, [3])], y: [column(labels, []), column(reg, [1])] };
}

const TWO: TensorInfo[] = [{ name: 'out1', shape: [2] }, { name: 'out2', shape: [1] }];

describe('fit', () => {
  test('two outputs with loss_weights [1, 0.5]: Keras keys, loss = out1_loss + 0.5 out2_loss (train and val)', async () => {
    const model = twoOutputModel();
    const compiled = resolveCompile({
      optimizer: { type: 'adam', learning_rate: 0.01 },
      loss: { out1: 'sparse_categorical_crossentropy', out2: 'mse' },
      loss_weights: [1, 0.5],
      metrics: { out1: ['accuracy'], out2: ['mae'] },
    }, TWO);
    const { x, y } = twoOutputData(100, 1);
    const epochsSeen: number[] = [];
    const res = await fit(model, compiled, ['out1', 'out2'], x, y, { epochs: 3, batchSize: 16, validationSplit: 0.2, seed: 7 }, {
      onEpochEnd: (epoch) => {
        epochsSeen.push(epoch);
      },
    });
    assert.deepEqual(Object.keys(res.history), [
      'loss', 'out1_loss', 'out2_loss', 'out1_accuracy', 'out2_mae',
      'val_loss', 'val_out1_loss', 'val_out2_loss', 'val_out1_accuracy', 'val_out2_mae',
    ]);
    assert.deepEqual(epochsSeen, [0, 1, 2]);
    assert.equal(res.epochsRun, 3);
    assert.equal(res.stopped, false);
    const h = res.history;
    for (let e = 0; e < 3; e++) {
      near(h.loss![e]!, h.out1_loss![e]! + 0.5 * h.out2_loss![e]!, 1e-5, `loss, epoch ${e}`);
      near(h.val_loss![e]!, h.val_out1_loss![e]! + 0.5 * h.val_out2_loss![e]!, 1e-5, `val_loss, epoch ${e}`);
    }
    // The validation values are evaluate() on the last 20% (Keras takes them before shuffling).
    const valX = [{ shape: [3], data: x[0]!.data.subarray(80 * 3) }];
    const valY = [{ shape: [], data: y[0]!.data.subarray(80) }, { shape: [1], data: y[1]!.data.subarray(80) }];
    const ev = await evaluate(model, compiled, ['out1', 'out2'], valX, valY, 7);
    assert.deepEqual(Object.keys(ev), ['loss', 'out1_loss', 'out2_loss', 'out1_accuracy', 'out2_mae']);
    for (const k of Object.keys(ev)) near(ev[k]!, h[`val_${k}`]![2]!, 1e-4, `evaluate ${k}`);
    model.dispose();
  });

  test('losses are Keras losses averaged over samples (evaluate on fixed weights)', async () => {
    // Dense(1) with w = [1, -1], b = 0.5 on x = [[1, 2], [0, 1], [3, 0]] predicts [-0.5, -0.5, 3.5];
    // targets [0, 1, 3] -> squared errors [0.25, 2.25, 0.25], mse 0.9167; abs errors mean (0.5 + 1.5 + 0.5) / 3.
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2], weights: [tf.tensor2d([[1], [-1]]), tf.tensor1d([0.5])] })] });
    const compiled = resolveCompile({ optimizer: 'sgd', loss: 'mse', metrics: ['mae'] }, [{ name: 'o', shape: [1] }]);
    const x = [column([[1, 2], [0, 1], [3, 0]], [2])];
    const y = [column([0, 1, 3], [])];
    // Batches of 2 and 1: the means are weighted by batch size.
    const ev = await evaluate(model, compiled, ['o'], x, y, 2);
    near(ev.loss!, 2.75 / 3, 1e-6, 'mse');
    near(ev.mae!, 2.5 / 3, 1e-6, 'mae');
    const p = await predict(model, x, 2);
    assert.deepEqual(p, [[[-0.5], [-0.5], [3.5]]]);
    model.dispose();
  });

  test('fit runs the model in training mode (Dropout active), evaluate in inference mode', async () => {
    // Dropout(0.9) then Dense(1, ones): in training most inputs are zeroed and the rest scaled by 10, so the
    // training loss is far from the deterministic inference loss; a negligible SGD rate keeps the weights fixed.
    const model = tf.sequential({ layers: [tf.layers.dropout({ rate: 0.9, inputShape: [3] }), tf.layers.dense({ units: 1, kernelInitializer: 'ones' })] });
    const compiled = resolveCompile({ optimizer: { type: 'sgd', lr: 1e-12 }, loss: 'mse' }, [{ name: 'o', shape: [1] }]);
    const r = rng(5);
    const x = [column(Array.from({ length: 300 }, () => r()), [3])];
    const y = [column(new Array(100).fill(1), [])];
    const res = await fit(model, compiled, ['o'], x, y, { epochs: 1, batchSize: 100 });
    const ev1 = await evaluate(model, compiled, ['o'], x, y, 100);
    const ev2 = await evaluate(model, compiled, ['o'], x, y, 30);
    near(ev1.loss!, ev2.loss!, 1e-6, 'evaluate is deterministic');
    assert.ok(res.history.loss![0]! > 2 * ev1.loss!, `training loss ${res.history.loss![0]} vs inference ${ev1.loss}`);
    model.dispose();
  });

  test('iris: 120 standardised training samples reach test accuracy >= 0.9', async () => {
    const lines = fs.readFileSync(new URL('../fixtures/datasets/iris.csv', import.meta.url), 'utf8').trim().split('\n').slice(1);
    const rows = lines.map((l) => l.split(',').map(Number));
    // A fixed shuffle, then 120 train / 30 test, standardised with the training statistics.
    const r = rng(42);
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    const feats = rows.map((row) => row.slice(0, 4));
    const labels = rows.map((row) => row[4]!);
    const mean = [0, 1, 2, 3].map((c) => feats.slice(0, 120).reduce((s, f) => s + f[c]!, 0) / 120);
    const std = [0, 1, 2, 3].map((c) => Math.sqrt(feats.slice(0, 120).reduce((s, f) => s + (f[c]! - mean[c]!) ** 2, 0) / 120));
    const z = feats.map((f) => f.map((v, c) => (v - mean[c]!) / std[c]!));
    const xTrain = [column(z.slice(0, 120), [4])];
    const yTrain = [column(labels.slice(0, 120), [])];
    const xTest = [column(z.slice(120), [4])];
    const yTest = [column(labels.slice(120), [])];

    const model = tf.sequential({
      // Seeded initialisers and shuffling make the run reproducible.
      layers: [
        tf.layers.dense({ units: 16, activation: 'relu', inputShape: [4], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    const compiled = resolveCompile({ optimizer: { type: 'adam', learning_rate: 0.02 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] }, [{ name: 'out', shape: [3] }]);
    const t0 = Date.now();
    const res = await fit(model, compiled, ['out'], xTrain, yTrain, { epochs: 40, batchSize: 16, seed: 3 });
    const ev = await evaluate(model, compiled, ['out'], xTest, yTest, 32);
    assert.ok(Date.now() - t0 < 10_000, 'trains in a few seconds');
    assert.deepEqual(Object.keys(res.history), ['loss', 'accuracy']);
    assert.ok(res.history.loss![39]! < res.history.loss![0]!, 'the loss goes down');
    assert.ok(ev.accuracy! >= 0.9, `test accuracy ${ev.accuracy}`);
    console.log(`iris: test accuracy ${ev.accuracy}, train accuracy ${res.history.accuracy![39]}, ${Date.now() - t0} ms`);
    // predict agrees with the accuracy evaluate reports.
    const [probs] = await predict(model, xTest, 8);
    const correct = probs!.filter((row, i) => row.indexOf(Math.max(...row)) === labels[120 + i]).length;
    near(correct / 30, ev.accuracy!, 1e-6, 'predict vs evaluate');
    model.dispose();
  });

  test('batch hooks: lazy running logs, absolute epochs with initial_epoch, shouldStop', async () => {
    const model = twoOutputModel();
    const compiled = resolveCompile({ optimizer: 'sgd', loss: ['sparse_categorical_crossentropy', 'mse'] }, TWO);
    const { x, y } = twoOutputData(40, 2);
    const calls: Array<[number, number]> = [];
    let firstLogs: Record<string, number> | undefined;
    const res = await fit(model, compiled, ['out1', 'out2'], x, y, { epochs: 3, batchSize: 10, initialEpoch: 1 }, {
      onBatchEnd: async (epoch, batch, logs) => {
        calls.push([epoch, batch]);
        if (!firstLogs) firstLogs = await logs();
      },
    });
    assert.deepEqual(calls, [[1, 0], [1, 1], [1, 2], [1, 3], [2, 0], [2, 1], [2, 2], [2, 3]]);
    assert.deepEqual(Object.keys(firstLogs!), ['loss', 'out1_loss', 'out2_loss']);
    assert.equal(res.epochsRun, 2);
    assert.equal(res.history.loss!.length, 2);

    // Stop after the third batch of the first epoch: no epoch completed.
    let batches = 0;
    const stopped = await fit(model, compiled, ['out1', 'out2'], x, y, { epochs: 5, batchSize: 10 }, {
      onBatchEnd: () => {
        batches++;
      },
      shouldStop: () => batches >= 3,
    });
    assert.deepEqual(stopped, { history: {}, stopped: true, epochsRun: 0, engine: { path: 'tfjs', reason: 'backend cpu' } });
    assert.equal(batches, 3);

    // A stop raised at an epoch end (early stopping) ends the run there.
    let stopNow = false;
    const early = await fit(model, compiled, ['out1', 'out2'], x, y, { epochs: 5, batchSize: 10 }, {
      onEpochEnd: (epoch) => {
        if (epoch === 1) stopNow = true;
      },
      shouldStop: () => stopNow,
    });
    assert.equal(early.epochsRun, 2);
    assert.equal(early.stopped, true);
    assert.equal(early.history.loss!.length, 2);
    model.dispose();
  });

  test('class_weight multiplies each sample loss by its class weight (Keras semantics)', async () => {
    // SGD with a negligible rate keeps the weights fixed, so the epoch loss can be checked by hand.
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, activation: 'softmax', inputShape: [2] })] });
    const compiled = resolveCompile({ optimizer: { type: 'sgd', learning_rate: 1e-12 }, loss: 'sparse_categorical_crossentropy' }, [{ name: 'o', shape: [3] }]);
    const xs = [[1, 0], [0, 1], [1, 1], [-1, 0.5], [0.3, -2], [2, 2]];
    const labels = [0, 1, 2, 0, 1, 2];
    const x = [column(xs, [2])];
    const y = [column(labels, [])];
    const weights: Record<string, number> = { '0': 1, '1': 3, '2': 0.5 };
    const res = await fit(model, compiled, ['o'], x, y, { epochs: 1, batchSize: 4, classWeight: weights, shuffle: false });
    const expected = tf.tidy(() => {
      const per = lossFunction(compiled.losses[0]!)(tf.tensor1d(labels), model.predict(tf.tensor2d(xs)) as tf.Tensor);
      return per.mul(tf.tensor1d(labels.map((l) => weights[String(l)]!))).mean().dataSync()[0]!;
    });
    near(res.history.loss![0]!, expected, 1e-5, 'weighted loss');
    const two = twoOutputModel();
    const data = twoOutputData(4, 1);
    await assert.rejects(
      fit(two, resolveCompile({ loss: ['sparse_categorical_crossentropy', 'mse'] }, TWO), ['out1', 'out2'], data.x, data.y, { epochs: 1, batchSize: 2, classWeight: { '0': 1 } }),
      (e: unknown) => e instanceof SpecError && e.path === 'class_weight',
    );
    two.dispose();
    model.dispose();
  });

  test('validation data, same seed -> same history, bad options are SpecErrors', async () => {
    const make = () => {
      const m = twoOutputModel();
      return m;
    };
    const a = make();
    const b = make();
    b.setWeights(a.getWeights());
    const compiled = resolveCompile({ optimizer: 'rmsprop', loss: ['sparse_categorical_crossentropy', 'mse'], metrics: { out2: ['mse'] } }, TWO);
    const train = twoOutputData(30, 3);
    const val = twoOutputData(10, 4);
    const ra = await fit(a, compiled, ['out1', 'out2'], train.x, train.y, { epochs: 2, batchSize: 8, seed: 11 }, {}, val);
    const rb = await fit(b, compiled, ['out1', 'out2'], train.x, train.y, { epochs: 2, batchSize: 8, seed: 11 }, {}, val);
    assert.deepEqual(ra.history, rb.history);
    assert.ok('val_out2_mse' in ra.history, Object.keys(ra.history).join());

    const bad: Array<[Parameters<typeof fit>[5], string]> = [
      [{ epochs: 1, batchSize: 0 }, 'batch_size'],
      [{ epochs: -1, batchSize: 4 }, 'epochs'],
      [{ epochs: 1, batchSize: 4, validationSplit: 1 }, 'validation_split'],
      [{ epochs: 1, batchSize: 4, validationSplit: 0.99 }, 'validation_split'],
    ];
    for (const [opts, path] of bad) {
      await assert.rejects(fit(a, compiled, ['out1', 'out2'], train.x, train.y, opts), (e: unknown) => e instanceof SpecError && e.path === path);
    }
    const mismatch = (path: string, re: RegExp) => (e: unknown) => e instanceof SpecError && e.code === 'DATASET_MISMATCH' && e.path === path && re.test(e.message);
    await assert.rejects(fit(a, compiled, ['out1', 'out2'], train.x, [train.y[0]!, val.y[1]!], { epochs: 1, batchSize: 4 }), mismatch('y[1]', /has 10 samples but the others have 30/));
    await assert.rejects(fit(a, compiled, ['out1', 'out2'], [column(new Array(60).fill(0), [2])], train.y, { epochs: 1, batchSize: 4 }), mismatch('x[0]', /expects samples of shape \[3\], got \[2\]/));
    await assert.rejects(fit(a, compiled, ['out1', 'out2'], train.x, [column(new Array(60).fill(0), [2]), train.y[1]!], { epochs: 1, batchSize: 4 }), mismatch('y[0]', /integer class labels/));
    await assert.rejects(evaluate(a, compiled, ['out1', 'out2'], train.x, [train.y[0]!, column(new Array(60).fill(0), [2])], 4), mismatch('y[1]', /expects targets of shape \[1\] per sample, got \[2\]/));
    await assert.rejects(predict(a, [column([1, 2], [2])], 4), mismatch('x[0]', /expects samples/));
    // 1-D data for an input of shape [1] is fed as [n, 1], as Keras's expand_1d does.
    const m1 = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
    const p1 = await predict(m1, [column([1, 2, 3], [])], 2);
    assert.deepEqual(p1[0]!.map((row) => row.length), [1, 1, 1]);
    m1.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('resume', () => {
  test('an Adam run stopped at a mid-epoch checkpoint and resumed repeats the uninterrupted one exactly', async () => {
    const compiled = resolveCompile({ optimizer: { type: 'adam', learning_rate: 0.01 }, loss: { out1: 'sparse_categorical_crossentropy', out2: 'mse' }, loss_weights: [1, 0.5] }, TWO);
    const { x, y } = twoOutputData(120, 3);
    const opts = { epochs: 6, batchSize: 8, seed: 2 };
    const make = () => {
      const m = twoOutputModel();
      m.setWeights(base.map((w) => w.clone()));
      return m;
    };
    const first = twoOutputModel();
    const base = first.getWeights().map((w) => w.clone());
    first.dispose();
    const m1 = make();
    const full = await fit(m1, compiled, ['out1', 'out2'], x, y, opts);
    const m2 = make();
    let saved: LoopState | null = null;
    let weights: tf.Tensor[] = [];
    let state: Array<{ name: string; tensor: tf.Tensor }> = [];
    let count = 0;
    await fit(m2, compiled, ['out1', 'out2'], x, y, opts, {
      checkpointDue: () => ++count === 40, // epoch 2, after its batch 9
      onCheckpoint: async (s) => {
        saved = s;
        weights = m2.getWeights().map((t) => t.clone());
        state = (await optimizerState(s.optimizer)).map((w) => ({ name: w.name, tensor: w.tensor.clone() }));
      },
      shouldStop: () => saved !== null,
    });
    const s = saved as unknown as LoopState;
    assert.deepEqual([s.epoch, s.batch], [2, 10]);
    const m3 = make();
    m3.setWeights(weights);
    const rest = await fit(m3, compiled, ['out1', 'out2'], x, y, { ...opts, resume: { epoch: s.epoch, batch: s.batch, sums: s.sums, seen: s.seen, optimizerWeights: state } });
    assert.deepEqual(m3.getWeights().map((w) => Array.from(w.dataSync())), m1.getWeights().map((w) => Array.from(w.dataSync())));
    assert.deepEqual(rest.history.loss, full.history.loss!.slice(2));
    tf.dispose([...base, ...weights, ...state.map((w) => w.tensor)]);
    m1.dispose(); m2.dispose(); m3.dispose();
  });
});

describe('memory', () => {
  test('numTensors returns to its baseline after fit + evaluate + predict, 5 times, every optimizer', async () => {
    // Dropout and BatchNormalization make training and inference differ; an L2 penalty adds regularisation losses.
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 8, activation: 'relu', inputShape: [3], kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }),
        tf.layers.batchNormalization(),
        tf.layers.dropout({ rate: 0.3 }),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    const { x, y } = twoOutputData(50, 5);
    const baseline = tf.memory().numTensors;
    const optimizers = ['adam', 'sgd', { type: 'sgd', momentum: 0.9, nesterov: true }, 'rmsprop', { type: 'rmsprop', momentum: 0.5, centered: true }, 'adagrad', 'adadelta', 'adamax'];
    for (let round = 0; round < 5; round++) {
      const compiled = resolveCompile({ optimizer: optimizers[round % optimizers.length], loss: 'sparse_categorical_crossentropy', metrics: ['accuracy', { type: 'sparse_top_k_categorical_accuracy', k: 1 }] }, [{ name: 'o', shape: [2] }]);
      const res = await fit(model, compiled, ['o'], x, [y[0]!], { epochs: 2, batchSize: 16, validationSplit: 0.2, classWeight: { '0': 1, '1': 2 } }, {
        onBatchEnd: async (_e, b, logs) => {
          if (b === 1) await logs();
        },
      });
      assert.ok(res.history.loss!.every(Number.isFinite), `round ${round}: ${JSON.stringify(res.history)}`);
      await evaluate(model, compiled, ['o'], x, [y[0]!], 16);
      await predict(model, x, 16);
      assert.equal(tf.memory().numTensors, baseline, `round ${round}`);
    }
    for (const opt of optimizers.slice(5)) {
      const compiled = resolveCompile({ optimizer: opt, loss: 'sparse_categorical_crossentropy' }, [{ name: 'o', shape: [2] }]);
      await fit(model, compiled, ['o'], x, [y[0]!], { epochs: 1, batchSize: 16 });
      assert.equal(tf.memory().numTensors, baseline, JSON.stringify(opt));
    }
    // The regularisation penalty is part of the loss, as in Keras.
    const plain = resolveCompile({ loss: 'sparse_categorical_crossentropy' }, [{ name: 'o', shape: [2] }]);
    const ev = await evaluate(model, plain, ['o'], x, [y[0]!], 50);
    const penalty = tf.tidy(() => model.layers[0]!.getWeights()[0]!.square().sum().mul(0.01).dataSync()[0]!);
    const dataLoss = tf.tidy(() => lossFunction(plain.losses[0]!)(tf.tensor1d(y[0]!.data), model.predict(tf.tensor2d(x[0]!.data, [50, 3])) as tf.Tensor).mean().dataSync()[0]!);
    near(ev.loss!, dataLoss + penalty, 1e-5, 'loss includes the L2 penalty');
    assert.equal(tf.memory().numTensors, baseline);
    model.dispose();
  });

  test('the wasm backend trains Dense models too, without leaks', async () => {
    // initBackend('cpu') did not load the wasm package: register it as backend.ts does.
    createRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');
    assert.ok(await tf.setBackend('wasm'), 'wasm backend');
    try {
      const model = twoOutputModel();
      const compiled = resolveCompile({ optimizer: 'adam', loss: ['sparse_categorical_crossentropy', 'huber'], metrics: ['accuracy'] }, TWO);
      const { x, y } = twoOutputData(64, 9);
      const baseline = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) {
        const res = await fit(model, compiled, ['out1', 'out2'], x, y, { epochs: 3, batchSize: 16, validationSplit: 0.25 });
        assert.ok(res.history.val_out1_accuracy!.every(Number.isFinite), JSON.stringify(res.history));
        await evaluate(model, compiled, ['out1', 'out2'], x, y, 16);
        const p = await predict(model, x, 16);
        assert.equal(p.length, 2);
        assert.equal(p[1]!.length, 64);
        assert.equal(tf.memory().numTensors, baseline);
      }
      model.dispose();
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
