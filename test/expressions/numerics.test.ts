// Expressions compute what they restate: losses equal the built-in ones, an expression
// activation equals swish, a Custom layer's gradient matches finite differences, and a
// model with a Custom layer survives save -> load -> predict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { loadModelFiles, saveModelFiles } from '../../src/model-spec/model-io.ts';
import { summarize } from '../../src/model-spec/summary.ts';
import type { ArrayColumn } from '../../src/model-spec/types.ts';
import { evaluate } from '../../workers/train-loop.ts';

await initBackend('cpu');

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

function columns(n: number, dim: number, seed: number): ArrayColumn {
  const r = rng(seed);
  return { shape: [dim], data: Float32Array.from({ length: n * dim }, () => r() * 2 - 1) };
}

const mlp = (outUnits: number, activation: string) => ({
  type: 'sequential',
  layers: [
    { type: 'Dense', units: 8, activation: 'tanh', input_shape: [5], kernel_initializer: { class_name: 'GlorotUniform', config: { seed: 3 } } },
    { type: 'Dense', units: outUnits, activation, kernel_initializer: { class_name: 'GlorotUniform', config: { seed: 4 } } },
  ],
});

/** Evaluates one model (same weights) under two compiles and returns both logs. */
async function evaluateBoth(spec: object, a: object, b: object, y: ArrayColumn): Promise<[Record<string, number>, Record<string, number>]> {
  const model = buildModel(spec);
  const outputs = [{ name: 'out', shape: model.outputs[0]!.shape.slice(1) }];
  const x = columns(37, 5, 11);
  try {
    return [
      await evaluate(model, resolveCompile(a, outputs), ['out'], [x], [y], 8),
      await evaluate(model, resolveCompile(b, outputs), ['out'], [x], [y], 8),
    ];
  } finally {
    model.dispose();
  }
}

test('expression losses equal the built-in losses they restate, to 1e-6', async () => {
  const r = rng(5);
  const dense: ArrayColumn = { shape: [3], data: Float32Array.from({ length: 37 * 3 }, () => r()) };
  const oneHot: ArrayColumn = { shape: [3], data: Float32Array.from({ length: 37 * 3 }, (_, i) => (i % 3 === Math.floor(i / 3) % 3 ? 1 : 0)) };
  const labels: ArrayColumn = { shape: [1], data: Float32Array.from({ length: 37 }, (_, i) => i % 3) };
  const cases: Array<[string, string, string, ArrayColumn]> = [
    ['linear', 'mse', 'mean(square(y_true - y_pred), axis=-1)', dense],
    // The course's MSE (Part 8) reduces to one number per batch: the same mean.
    ['linear', 'mse', 'mean(square(y_true - y_pred))', dense],
    ['linear', 'mae', 'mean(abs(y_true - y_pred), axis=-1)', dense],
    ['softmax', 'categorical_crossentropy', '-sum(y_true * log(clip(y_pred / sum(y_pred, axis=-1, keepdims=true), epsilon(), 1 - epsilon())), axis=-1)', oneHot],
    ['softmax', 'sparse_categorical_crossentropy', '-sum(one_hot(squeeze(y_true, -1), 3) * log(clip(y_pred, epsilon(), 1 - epsilon())), axis=-1)', labels],
    ['sigmoid', 'binary_crossentropy', '-mean(y_true * log(clip(y_pred, epsilon(), 1 - epsilon()) + epsilon()) + (1 - y_true) * log(1 - clip(y_pred, epsilon(), 1 - epsilon()) + epsilon()), axis=-1)', dense],
  ];
  for (const [activation, builtin, expression, y] of cases) {
    const [want, got] = await evaluateBoth(mlp(3, activation), { loss: builtin }, { loss: { expression } }, y);
    assert.ok(Math.abs(want.loss! - got.loss!) <= 1e-6 * Math.max(1, Math.abs(want.loss!)), `${builtin} vs ${expression}: ${want.loss} vs ${got.loss}`);
  }
});

test('an expression metric is reported under its name and equals the built-in one', async () => {
  const r = rng(9);
  const y: ArrayColumn = { shape: [3], data: Float32Array.from({ length: 37 * 3 }, () => r()) };
  const [want, got] = await evaluateBoth(
    mlp(3, 'linear'),
    { loss: 'mse', metrics: ['mae'] },
    { loss: 'mse', metrics: [{ name: 'my_mae', expression: 'mean(abs(y_true - y_pred), axis=-1)' }] },
    y,
  );
  assert.deepEqual(Object.keys(got).sort(), ['loss', 'my_mae']);
  assert.ok(Math.abs(want.mae! - got.my_mae!) < 1e-6, `${want.mae} vs ${got.my_mae}`);
});

test('an expression activation equals the built-in one it restates', () => {
  const builtin = buildModel(mlp(4, 'swish'));
  const custom = buildModel(mlp(4, { expression: 'x * sigmoid(x)' } as never));
  const x = tf.randomUniform([6, 5], -2, 2, 'float32', 1);
  const diff = tf.tidy(() => (builtin.predict(x) as tf.Tensor).sub(custom.predict(x) as tf.Tensor).abs().max().dataSync()[0]!);
  assert.ok(diff < 1e-6, `max difference ${diff}`);
  tf.dispose([x]);
  builtin.dispose();
  custom.dispose();
});

const denseLike = {
  type: 'Custom',
  name: 'my_dense',
  config: { units: 3, scale: 0.5 },
  weights: {
    kernel: { shape: ['input_dim', 'units'], initializer: { class_name: 'RandomNormal', config: { seed: 7 } } },
    bias: { shape: ['units'], initializer: { class_name: 'RandomNormal', config: { seed: 8 } } },
  },
  call: 'tanh(inputs @ kernel + bias) * scale + square(inputs @ kernel) / 10',
};

test('a Custom layer counts its params and its gradient matches finite differences', () => {
  const model = buildModel({ type: 'sequential', layers: [{ ...denseLike, input_shape: [4] }] });
  const summary = summarize(model);
  assert.deepEqual(summary.layers.map((l) => [l.name, l.type, l.output_shape, l.params]), [['my_dense', 'Custom', [null, 3], 4 * 3 + 3]]);
  const x = tf.tensor2d([[0.3, -0.2, 0.5, 0.1], [-0.4, 0.2, 0.05, -0.3]]);
  const target = tf.tensor2d([[0.1, -0.2, 0.3], [0.0, 0.4, -0.1]]);
  const lossOf = () => (model.apply(x) as tf.Tensor).sub(target).square().sum() as tf.Scalar;
  const { grads } = tf.variableGrads(lossOf, model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
  for (const w of model.trainableWeights) {
    const variable = (w as unknown as { val: tf.Variable }).val;
    const analytic = grads[variable.name]!.dataSync();
    const values = variable.dataSync().slice();
    const h = 1e-2;
    values.forEach((v, i) => {
      const at = (delta: number) => {
        const moved = values.slice();
        moved[i] = v + delta;
        variable.assign(tf.tensor(moved, variable.shape));
        return tf.tidy(() => lossOf().dataSync()[0]!);
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      variable.assign(tf.tensor(values, variable.shape));
      assert.ok(Math.abs(numeric - analytic[i]!) <= 2e-3 + 1e-2 * Math.abs(numeric), `${w.name}[${i}]: numeric ${numeric} vs analytic ${analytic[i]}`);
    });
  }
  tf.dispose([x, target]);
  model.dispose();
});

test('a model with Custom layers and an expression activation survives save -> load -> predict', async () => {
  const spec = {
    type: 'functional',
    inputs: [{ name: 'a', shape: [4] }, { name: 'b', shape: [4] }],
    layers: [
      { ...denseLike, inputs: ['a'] },
      { type: 'Custom', name: 'gate', inputs: ['a', 'b'], config: { my_scale: 1 }, weights: { w: { shape: ['input_dim'], initializer: 'ones' } }, call: 'inputs[0] * sigmoid(inputs[1] * w) * my_scale' },
      { type: 'Dense', name: 'out', units: 2, activation: { expression: 'x * tanh(softplus(x)) + log_softmax(x) * 0 + relu(x, max_value=None)' }, inputs: ['gate'] },
    ],
    outputs: ['out', 'my_dense'],
  };
  const model = buildModel(spec);
  assert.deepEqual(model.outputs.map((o) => o.shape), [[null, 2], [null, 3]]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'expr-save-'));
  try {
    await saveModelFiles(model, dir, path.join(dir, 'v1'));
    const loaded = await loadModelFiles(path.join(dir, 'v1'));
    const xs = [tf.randomUniform([3, 4], -1, 1, 'float32', 2), tf.randomUniform([3, 4], -1, 1, 'float32', 3)];
    const before = (model.predict(xs) as tf.Tensor[]).map((t) => Array.from(t.dataSync()));
    const after = (loaded.predict(xs) as tf.Tensor[]).map((t) => Array.from(t.dataSync()));
    assert.deepEqual(after, before);
    assert.equal(loaded.countParams(), model.countParams());
    // A fresh process, where no expression class was registered yet, loads it too.
    const script = `
      import * as tf from '@tensorflow/tfjs';
      import { loadModelFiles } from './src/model-spec/model-io.ts';
      await tf.setBackend('cpu');
      const m = await loadModelFiles(${JSON.stringify(path.join(dir, 'v1'))});
      const xs = ${JSON.stringify(xs.map((t) => t.arraySync()))}.map((a) => tf.tensor(a));
      console.log(JSON.stringify(m.predict(xs).map((t) => Array.from(t.dataSync()))));`;
    const scriptFile = path.join(process.cwd(), `.expr-load-${process.pid}.mts`);
    fs.writeFileSync(scriptFile, script);
    try {
      const out = execFileSync(process.execPath, ['--import', 'tsx', scriptFile], { encoding: 'utf8' });
      assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), before);
    } finally {
      fs.rmSync(scriptFile, { force: true });
    }
    // Expressions are kept as hex, so tfjs's renaming of config strings cannot touch them.
    const saved = fs.readFileSync(path.join(dir, 'v1', 'model.json'), 'utf8');
    assert.ok(saved.includes(Buffer.from('"call":"inputs[0] * sigmoid(inputs[1] * w) * my_scale"').toString('hex')));
    loaded.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    model.dispose();
  }
});

test("a Custom layer's weight regularizer adds its penalty to the loss", async () => {
  const spec = (regularizer: unknown) => ({ type: 'sequential', layers: [{
    type: 'Custom', name: 'scale', input_shape: [3],
    weights: { w: { shape: ['input_dim'], initializer: 'ones', ...(regularizer ? { regularizer } : {}) } },
    call: 'inputs * w',
  }] });
  const x: ArrayColumn = { shape: [3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  const y: ArrayColumn = { shape: [3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  const compiled = resolveCompile({ loss: 'mse' }, [{ name: 'out', shape: [3] }]);
  const plain = buildModel(spec(null));
  const penalised = buildModel(spec({ class_name: 'L2', config: { l2: 0.5 } }));
  const a = await evaluate(plain, compiled, ['out'], [x], [y], 2);
  const b = await evaluate(penalised, compiled, ['out'], [x], [y], 2);
  // w = [1, 1, 1] fits exactly: the loss is the L2 penalty alone, 0.5 * 3.
  assert.ok(Math.abs(a.loss!) < 1e-7);
  assert.ok(Math.abs(b.loss! - 1.5) < 1e-6, `${b.loss}`);
  plain.dispose();
  penalised.dispose();
});

test('per-output expression losses and an expression recurrent_activation', async () => {
  const spec = {
    type: 'functional',
    inputs: [{ name: 'seq', shape: [4, 2] }],
    layers: [
      { type: 'LSTM', name: 'rnn', units: 3, recurrent_activation: { expression: 'hard_sigmoid(x)' }, inputs: ['seq'] },
      { type: 'Dense', name: 'a', units: 2, inputs: ['rnn'] },
      { type: 'Dense', name: 'b', units: 1, inputs: ['rnn'] },
    ],
    outputs: ['a', 'b'],
  };
  const model = buildModel(spec);
  const outputs = [{ name: 'a', shape: [2] }, { name: 'b', shape: [1] }];
  const r = rng(4);
  const x: ArrayColumn = { shape: [4, 2], data: Float32Array.from({ length: 10 * 8 }, () => r()) };
  const ya: ArrayColumn = { shape: [2], data: Float32Array.from({ length: 20 }, () => r()) };
  const yb: ArrayColumn = { shape: [1], data: Float32Array.from({ length: 10 }, () => r()) };
  const builtin = await evaluate(model, resolveCompile({ loss: { a: 'mse', b: 'mae' }, loss_weights: [1, 0.5] }, outputs), ['a', 'b'], [x], [ya, yb], 4);
  const custom = await evaluate(model, resolveCompile({
    loss: [{ expression: 'mean(square(y_true - y_pred), axis=-1)' }, { expression: 'mean(abs(y_true - y_pred), axis=-1)' }],
    loss_weights: [1, 0.5],
  }, outputs), ['a', 'b'], [x], [ya, yb], 4);
  for (const key of ['loss', 'a_loss', 'b_loss']) assert.ok(Math.abs(builtin[key]! - custom[key]!) < 1e-6, `${key}: ${builtin[key]} vs ${custom[key]}`);
  model.dispose();
});
