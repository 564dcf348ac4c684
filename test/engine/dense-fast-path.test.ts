/**
 * The dense fast path (src/engine/dense-*.ts): its kernels against float64 references, the
 * committed .wasm against its source, which models it takes, and fits through it against the
 * same fits through tfjs (histories, weights, the optimizer's state, a learning-rate change, a
 * checkpoint and resume).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { DENSE_KERNELS_WASM, loadDenseKernels } from '../../src/engine/dense-kernels.ts';
import { planDenseTraining } from '../../src/engine/dense-plan.ts';
import { mulberry32, withSeededRandom } from '../../src/engine/seeded-random.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { setLearningRate } from '../../src/model-spec/optimizers.ts';
import type { ArrayColumn } from '../../src/model-spec/types.ts';
import { fit, type FitOptions, type LoopState } from '../../workers/train-loop.ts';

before(async () => {
  await initBackend('wasm');
});

const random = mulberry32(11);
const column = (shape: number[], n: number, value: () => number): ArrayColumn => ({
  shape, data: Float32Array.from({ length: n * shape.reduce((a, b) => a * b, 1) }, value),
});

describe('dense kernels', () => {
  test('the three matrix products equal a float64 reference on odd and even shapes', () => {
    const k = loadDenseKernels()!;
    k.memory.grow(64);
    const f = new Float32Array(k.memory.buffer);
    let top = k.heapBase();
    const put = (values: Float32Array) => {
      top = Math.ceil(top / 16) * 16;
      const at = top;
      f.set(values, at / 4);
      top += values.length * 4;
      return at;
    };
    const rand = (n: number) => Float32Array.from({ length: n }, () => random() - 0.5);
    for (const [M, K, N] of [[1, 1, 1], [3, 5, 7], [4, 4, 8], [9, 13, 17], [32, 64, 10], [33, 40, 12]] as const) {
      const A = rand(M * K), B = rand(K * N), D = rand(M * N), C0 = rand(M * N), G0 = rand(K * N);
      const a = put(A), b = put(B), d = put(D), c = put(C0), g = put(G0), x = put(new Float32Array(M * K));
      k.gemmNN(a, b, c, M, K, N, 1); // C = C0 + A B
      k.gemmTN(a, d, g, M, K, N, 0); // G = A^T D
      k.gemmNT(d, b, x, M, N, K); // X = D B^T
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
        let s = C0[i * N + j]!;
        for (let q = 0; q < K; q++) s += A[i * K + q]! * B[q * N + j]!;
        assert.ok(Math.abs(f[c / 4 + i * N + j]! - s) < 1e-5, `NN ${M}x${K}x${N} at ${i},${j}`);
      }
      for (let q = 0; q < K; q++) for (let j = 0; j < N; j++) {
        let s = 0;
        for (let i = 0; i < M; i++) s += A[i * K + q]! * D[i * N + j]!;
        assert.ok(Math.abs(f[g / 4 + q * N + j]! - s) < 1e-5, `TN ${M}x${K}x${N} at ${q},${j}`);
      }
      for (let i = 0; i < M; i++) for (let q = 0; q < K; q++) {
        let s = 0;
        for (let j = 0; j < N; j++) s += D[i * N + j]! * B[q * N + j]!;
        assert.ok(Math.abs(f[x / 4 + i * K + q]! - s) < 1e-5, `NT ${M}x${K}x${N} at ${i},${q}`);
      }
    }
  });

  test('dropout zeroes about `rate` of the values and scales the others by 1 / (1 - rate), the same for the same seed', () => {
    const k = loadDenseKernels()!;
    k.memory.grow(32);
    const n = 100_000;
    const base = Math.ceil(k.heapBase() / 16) * 16;
    const [x, mask, x2, mask2] = [base, base + 4 * n, base + 8 * n, base + 12 * n];
    const f = new Float32Array(k.memory.buffer);
    f.fill(2, x / 4, x / 4 + n);
    f.fill(2, x2 / 4, x2 / 4 + n);
    k.dropout(x, mask, n, 0.3, 12345);
    k.dropout(x2, mask2, n, 0.3, 12345);
    let zeros = 0;
    for (let i = 0; i < n; i++) {
      const v = f[x / 4 + i]!;
      if (v === 0) zeros++;
      else assert.equal(v, Math.fround(2 * Math.fround(1 / Math.fround(0.7))));
      assert.equal(f[mask / 4 + i]! * 2, v);
    }
    assert.ok(Math.abs(zeros / n - 0.3) < 0.01, `zeroed ${zeros / n}`);
    assert.deepEqual(f.slice(x2 / 4, x2 / 4 + n), f.slice(x / 4, x / 4 + n));
  });

  test('dense-kernels.wasm is what `npm run build:wasm` makes of its source', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dense-wasm-'));
    try {
      const out = path.join(dir, 'k.wasm');
      const script = JSON.parse(fs.readFileSync('package.json', 'utf8')).scripts['build:wasm'] as string;
      const args = script.split(/\s+/).slice(1).map((a) => (a === 'src/engine/assembly/dense-kernels.wasm' ? out : a));
      execFileSync(process.execPath, ['node_modules/assemblyscript/bin/asc.js', ...args], { stdio: 'pipe' });
      assert.ok(fs.readFileSync(out).equals(fs.readFileSync(DENSE_KERNELS_WASM)), 'dense-kernels.wasm is stale: run npm run build:wasm');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

const MLP = (hidden: string, last: string, units: number, extra: Record<string, unknown> = {}) => ({
  type: 'sequential', layers: [
    { type: 'Dense', units: 12, activation: hidden, input_shape: [6], ...extra },
    { type: 'Dense', units: 8, activation: hidden, use_bias: false },
    { type: 'Dense', units, activation: last }],
});

describe('which fits take the dense path', () => {
  const compiled = resolveCompile({ optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] }, [{ name: 'o', shape: [3] }]);
  const plan = (spec: unknown, c = compiled, targets = 1) => {
    const model = buildModel(spec);
    try {
      return planDenseTraining(model, c, { features: 6, targets });
    } finally {
      model.dispose();
    }
  };
  const reason = (spec: unknown, c = compiled, targets = 1) => {
    const p = plan(spec, c, targets);
    return 'reason' in p ? p.reason : 'accepted';
  };

  test('Sequential and functional chains of Dense layers', () => {
    const p = plan(MLP('relu', 'softmax', 3));
    assert.ok(!('reason' in p));
    assert.deepEqual(p.layers.map((l) => [l.inputs, l.units, l.activation, l.bias !== null]), [[6, 12, 'relu', true], [12, 8, 'relu', false], [8, 3, 'softmax', true]]);
    assert.deepEqual(p.metrics, ['metric']);
    assert.equal(p.optimizer, 'adam');
    const functional = { type: 'functional', inputs: [{ name: 'i', shape: [6] }], layers: [
      { name: 'h', type: 'Dense', units: 4, activation: 'tanh', inputs: ['i'] },
      { name: 'o', type: 'Dense', units: 3, activation: 'softmax', inputs: ['h'] }], outputs: ['o'] };
    assert.equal(reason(functional), 'accepted');
    const dropped = plan({ type: 'sequential', layers: [
      { type: 'Dense', units: 12, activation: 'relu', input_shape: [6] }, { type: 'Dropout', rate: 0.25 }, { type: 'Dense', units: 3, activation: 'softmax' }] });
    assert.ok(!('reason' in dropped));
    assert.deepEqual(dropped.layers.map((l) => l.dropout), [0.25, 0]);
  });

  test('anything else keeps the tfjs path, with the reason', () => {
    assert.match(reason({ type: 'sequential', layers: [{ type: 'Dropout', rate: 0.5, input_shape: [6] }, { type: 'Dense', units: 3, activation: 'softmax' }] }), /Dropout/);
    assert.match(reason({ type: 'sequential', layers: [{ type: 'Dense', units: 3, activation: 'softmax', input_shape: [6] }, { type: 'Dropout', rate: 0.5 }] }), /no chain of Dense layers to the output/);
    assert.match(reason({ type: 'sequential', layers: [{ type: 'Dense', units: 4, input_shape: [6] }, { type: 'BatchNormalization' }, { type: 'Dense', units: 3, activation: 'softmax' }] }), /BatchNormalization/);
    assert.match(reason(MLP('relu', 'softmax', 3, { kernel_regularizer: { type: 'l2', l2: 0.01 } })), /regularizer/);
    assert.match(reason(MLP('elu', 'softmax', 3)), /activation elu/);
    assert.match(reason(MLP('relu', 'sigmoid', 3)), /after a sigmoid output/);
    const withLoss = (compile: unknown, units = 3) => resolveCompile(compile, [{ name: 'o', shape: [units] }]);
    assert.match(reason(MLP('relu', 'softmax', 3), withLoss({ optimizer: { type: 'rmsprop', centered: true }, loss: 'sparse_categorical_crossentropy' })), /optimizer rmsprop \(centered\)/);
    assert.match(reason(MLP('relu', 'softmax', 3), withLoss({ optimizer: 'adagrad', loss: 'sparse_categorical_crossentropy' })), /optimizer adagrad/);
    assert.match(reason(MLP('relu', 'softmax', 3), withLoss({ optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['top_k_categorical_accuracy'] })), /metric/);
    assert.match(reason(MLP('relu', 'softmax', 3), withLoss({ optimizer: 'adam', loss: { name: 'sparse_categorical_crossentropy', from_logits: true } })), /from_logits/);
    assert.match(reason(MLP('relu', 'softmax', 3), withLoss({ optimizer: 'adam', loss: { expression: 'mean(square(y_true - y_pred), axis=-1)' } })), /loss expression/);
    assert.match(reason(MLP('relu', 'linear', 3), withLoss({ optimizer: { type: 'adam', learning_rate: { type: 'exponential_decay', initial_learning_rate: 0.01, decay_steps: 10, decay_rate: 0.9 } }, loss: 'mse' }), 3), /schedule/);
  });
});

interface Case { name: string; spec: unknown; compile: unknown; units: number; y: (n: number) => ArrayColumn }
const N = 96;
const onehot = (n: number, k: number): ArrayColumn => {
  const data = new Float32Array(n * k);
  for (let i = 0; i < n; i++) data[i * k + Math.floor(random() * k)] = 1;
  return { shape: [k], data };
};
const CASES: Case[] = [
  { name: 'sparse categorical cross-entropy, Adam, relu', spec: MLP('relu', 'softmax', 4), units: 4,
    compile: { optimizer: { type: 'adam', learning_rate: 0.01 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
    y: (n) => column([], n, () => Math.floor(random() * 4)) },
  { name: 'categorical cross-entropy, SGD, tanh', spec: MLP('tanh', 'softmax', 3), units: 3,
    compile: { optimizer: { type: 'sgd', learning_rate: 0.1 }, loss: 'categorical_crossentropy', metrics: ['accuracy'] },
    y: (n) => onehot(n, 3) },
  { name: 'binary cross-entropy, Adam, sigmoid', spec: MLP('sigmoid', 'sigmoid', 2), units: 2,
    compile: { optimizer: 'adam', loss: 'binary_crossentropy', metrics: ['accuracy'] },
    y: (n) => column([2], n, () => (random() < 0.4 ? 1 : 0)) },
  { name: 'mean squared error, SGD, linear output', spec: MLP('relu', 'linear', 2), units: 2,
    compile: { optimizer: { type: 'sgd', learning_rate: 0.05 }, loss: 'mse', metrics: ['mae', 'mse'] },
    y: (n) => column([2], n, () => random() * 2 - 1) },
  { name: 'sparse categorical cross-entropy, SGD with Nesterov momentum, tanh', spec: MLP('tanh', 'softmax', 4), units: 4,
    compile: { optimizer: { type: 'sgd', learning_rate: 0.05, momentum: 0.9, nesterov: true }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
    y: (n) => column([1], n, () => Math.floor(random() * 4)) },
  { name: 'mean squared error, RMSprop with momentum, sigmoid output', spec: MLP('relu', 'sigmoid', 2), units: 2,
    compile: { optimizer: { type: 'rmsprop', learning_rate: 0.005, momentum: 0.5 }, loss: 'mse', metrics: ['mae'] },
    y: (n) => column([2], n, () => random()) },
];

function close(a: number, b: number, rel: number): boolean {
  return Math.abs(a - b) <= rel * Math.max(1e-3, Math.abs(a), Math.abs(b));
}

function assertHistoriesClose(a: Record<string, number[]>, b: Record<string, number[]>, rel: number): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const key of Object.keys(a)) a[key]!.forEach((v, i) => assert.ok(close(v, b[key]![i]!, rel), `${key}[${i}]: ${v} vs ${b[key]![i]}`));
}

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

function assertWeightsClose(a: Float32Array[], b: Float32Array[], rel: number): void {
  a.forEach((w, i) => w.forEach((v, j) => assert.ok(close(v, b[i]![j]!, rel), `weight ${i}[${j}]: ${v} vs ${b[i]![j]}`)));
}

describe('fits through the dense path equal fits through tfjs', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const x = column([6], N, () => random() * 2 - 1);
      const y = c.y(N);
      const compiled = resolveCompile(c.compile, [{ name: 'o', shape: [c.units] }]);
      const tensors = tf.memory().numTensors;
      const run = async (denseFastPath: boolean) => {
        const model = withSeededRandom(5, () => buildModel(c.spec));
        const r = await fit(model, compiled, ['o'], [x], [y], { epochs: 3, batchSize: 10, seed: 2, validationSplit: 0.25, denseFastPath });
        const out = { r, weights: weightsOf(model) };
        model.dispose();
        return out;
      };
      const fast = await run(true);
      const slow = await run(false);
      assert.deepEqual(fast.r.engine, { path: 'dense' });
      assert.equal(slow.r.engine.path, 'tfjs');
      assertHistoriesClose(fast.r.history, slow.r.history, 1e-4);
      assertWeightsClose(fast.weights, slow.weights, 1e-3);
      assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
    });
  }

  test('Dropout: rate 0 is the tfjs path exactly; otherwise seeded draws, a loss like tfjs\'s, and the same run for the same seed', async () => {
    const spec = (rate: number) => ({ type: 'sequential', layers: [
      { type: 'Dense', units: 32, activation: 'tanh', input_shape: [6] }, { type: 'Dropout', rate },
      { type: 'Dense', units: 16, activation: 'relu' }, { type: 'Dropout', rate },
      { type: 'Dense', units: 4, activation: 'softmax' }] });
    // A learnable problem: the class is the argmax of four fixed linear functions of x.
    const n = 400;
    const x = column([6], n, () => random() * 2 - 1);
    const y = column([], n, () => 0);
    for (let i = 0; i < n; i++) {
      const r = x.data.subarray(i * 6, i * 6 + 6);
      const scores = [r[0]! + r[1]!, r[2]! - r[0]!, r[3]! + r[4]! - r[1]!, r[5]! - r[2]!];
      y.data[i] = scores.indexOf(Math.max(...scores));
    }
    const compiled = resolveCompile(CASES[0]!.compile, [{ name: 'o', shape: [4] }]);
    const run = async (rate: number, denseFastPath: boolean, seed = 2) => {
      const model = withSeededRandom(5, () => buildModel(spec(rate)));
      const r = await fit(model, compiled, ['o'], [x], [y], { epochs: 8, batchSize: 16, seed, denseFastPath });
      model.dispose();
      return r;
    };
    const [fast0, slow0] = [await run(0, true), await run(0, false)];
    assert.equal(fast0.engine.path, 'dense');
    assertHistoriesClose(fast0.history, slow0.history, 1e-4);
    const [fast, again, other, slow] = [await run(0.3, true), await run(0.3, true), await run(0.3, true, 3), await run(0.3, false)];
    assert.equal(fast.engine.path, 'dense');
    assert.deepEqual(again.history, fast.history);
    assert.notDeepEqual(other.history.loss, fast.history.loss);
    // Different draws, the same expected loss: over the last six epochs, within 15% of the tfjs
    // path's (two seeds of either path differ by about 10%), and well above the loss without Dropout.
    const late = (h: Record<string, number[]>) => h.loss!.slice(2).reduce((a, b) => a + b, 0) / 6;
    assert.ok(close(late(fast.history), late(slow.history), 0.15), `${late(fast.history)} vs ${late(slow.history)}`);
    assert.ok(late(fast.history) > 2 * late(fast0.history) && late(slow.history) > 2 * late(slow0.history));
  });

  test('sample weights and class weights, as the tfjs path weighs the loss (metrics unweighted)', async () => {
    // Class weights pick the class from the label (sparse) or the one-hot argmax; regression takes sample weights only.
    for (const [c, classWeight] of [[CASES[0]!, { 0: 3, 1: 0.5 }], [CASES[1]!, { 2: 4 }], [CASES[3]!, undefined]] as const) {
      const x = column([6], N, () => random() * 2 - 1);
      const y = c.y(N);
      const sampleWeight = column([], N, () => random() * 2);
      const compiled = resolveCompile(c.compile, [{ name: 'o', shape: [c.units] }]);
      const run = async (denseFastPath: boolean) => {
        const model = withSeededRandom(5, () => buildModel(c.spec));
        const r = await fit(model, compiled, ['o'], [x], [y], {
          epochs: 3, batchSize: 10, seed: 2, validationSplit: 0.25, denseFastPath, sampleWeight, ...(classWeight ? { classWeight } : {}),
        });
        const out = { r, weights: weightsOf(model) };
        model.dispose();
        return out;
      };
      const fast = await run(true);
      const slow = await run(false);
      assert.deepEqual(fast.r.engine, { path: 'dense' }, c.name);
      assertHistoriesClose(fast.r.history, slow.r.history, 1e-4);
      assertWeightsClose(fast.weights, slow.weights, 1e-3);
    }
  });

  const compiled = resolveCompile(CASES[0]!.compile, [{ name: 'o', shape: [4] }]);
  const x = column([6], N, () => random() * 2 - 1);
  const y = CASES[0]!.y(N);
  const opts: FitOptions = { epochs: 3, batchSize: 8, seed: 4 };

  test('callbacks see the same optimizer state, and a learning-rate change takes effect', async () => {
    const run = async (denseFastPath: boolean) => {
      const model = withSeededRandom(5, () => buildModel(CASES[0]!.spec));
      let state: Array<{ name: string; values: Float32Array }> = [];
      const r = await fit(model, compiled, ['o'], [x], [y], { ...opts, denseFastPath }, {
        onEpochEnd: async (epoch, _logs, { optimizer }) => {
          if (epoch !== 0) return;
          state = await Promise.all((await optimizer.getWeights()).map(async (w) => ({ name: w.name, values: (await w.tensor.data()) as Float32Array })));
          setLearningRate(optimizer, 0.001);
        },
      });
      model.dispose();
      return { r, state };
    };
    const fast = await run(true);
    const slow = await run(false);
    // The same slots (the second model's variables carry a _1 suffix: names are unique per process).
    const names = (st: typeof fast.state) => st.map((s) => s.name.replace(/_\d+/g, ''));
    assert.deepEqual(names(fast.state), names(slow.state));
    assert.equal(fast.state[0]!.values[0], 12); // iterations: 96 / 8 steps
    assertWeightsClose(fast.state.map((s) => s.values), slow.state.map((s) => s.values), 1e-3);
    assertHistoriesClose(fast.r.history, slow.r.history, 1e-4);
  });

  test('a run stopped at a mid-epoch checkpoint and resumed ends as the uninterrupted one (Dropout\'s draws included)', async () => {
    const spec = { type: 'sequential', layers: [
      { type: 'Dense', units: 12, activation: 'relu', input_shape: [6] }, { type: 'Dropout', rate: 0.2 }, { type: 'Dense', units: 4, activation: 'softmax' }] };
    const make = () => withSeededRandom(5, () => buildModel(spec));
    const m1 = make();
    const full = await fit(m1, compiled, ['o'], [x], [y], opts);
    const m2 = make();
    let saved: LoopState | null = null;
    let savedWeights: tf.Tensor[] = [];
    let optimizerWeights: Array<{ name: string; tensor: tf.Tensor }> = [];
    let count = 0;
    const first = await fit(m2, compiled, ['o'], [x], [y], opts, {
      checkpointDue: () => ++count === 17, // epoch 1, after its batch 4
      onCheckpoint: async (s) => {
        saved = s;
        savedWeights = m2.getWeights().map((t) => t.clone());
        optimizerWeights = (await s.optimizer.getWeights()).map((w) => ({ name: w.name, tensor: w.tensor.clone() }));
      },
      shouldStop: () => saved !== null,
    });
    assert.equal(first.engine.path, 'dense');
    assert.equal(first.stopped, true);
    const s = saved as unknown as LoopState;
    assert.deepEqual([s.epoch, s.batch, s.seen], [1, 5, 40]);
    const m3 = make();
    m3.setWeights(savedWeights);
    const rest = await fit(m3, compiled, ['o'], [x], [y], { ...opts, resume: { epoch: s.epoch, batch: s.batch, sums: s.sums, seen: s.seen, optimizerWeights } });
    assert.deepEqual(weightsOf(m3), weightsOf(m1));
    assert.deepEqual(rest.history, Object.fromEntries(Object.entries(full.history).map(([k, v]) => [k, v.slice(1)])));
    tf.dispose([...savedWeights, ...optimizerWeights.map((w) => w.tensor)]);
    m1.dispose(); m2.dispose(); m3.dispose();
  });
});
