// Nadam and AdamW against Keras's update rules worked by hand; learning-rate schedules applied
// per step inside the optimizer; optimizer state through getWeights()/setWeights() as the
// worker's checkpoints use it; compile's schedule forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { SpecError } from '../../src/errors.ts';
import { getLearningRate, makeOptimizer, scheduleValue, setLearningRate } from '../../src/model-spec/optimizers.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import type { OptimizerConfig } from '../../src/model-spec/types.ts';

await initBackend('cpu');

/** Runs `steps` updates of optimizer on w (1-D) with loss sum(w * g) so the gradient is g each step. */
function run(opt: tf.Optimizer, w: tf.Variable, grads: number[][]) {
  for (const g of grads) {
    const gt = tf.tensor1d(g);
    opt.minimize(() => tf.sum(tf.mul(w, gt)) as tf.Scalar, false, [w]);
    gt.dispose();
  }
  return Array.from(w.dataSync());
}

const close = (a: number[], b: number[], tol = 1e-5) => a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < tol, `${x} vs ${b[i]}`));

function kerasNadam(w: number[], grads: number[][], lr = 0.001, b1 = 0.9, b2 = 0.999, eps = 1e-7): number[] {
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  let uProduct = 1;
  grads.forEach((g, t0) => {
    const t = t0 + 1;
    const uT = b1 * (1 - 0.5 * 0.96 ** t);
    const uT1 = b1 * (1 - 0.5 * 0.96 ** (t + 1));
    uProduct *= uT;
    const uProduct1 = uProduct * uT1;
    w.forEach((_x, i) => {
      m[i] += (g[i]! - m[i]!) * (1 - b1);
      v[i] += (g[i]! ** 2 - v[i]!) * (1 - b2);
      const mHat = (uT1 * m[i]!) / (1 - uProduct1) + ((1 - uT) * g[i]!) / (1 - uProduct);
      const vHat = v[i]! / (1 - b2 ** t);
      w[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    });
  });
  return w;
}

function kerasAdamW(w: number[], grads: number[][], lr = 0.001, wd = 0.004, b1 = 0.9, b2 = 0.999, eps = 1e-7): number[] {
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  grads.forEach((g, t0) => {
    const t = t0 + 1;
    w.forEach((_x, i) => {
      w[i] -= w[i]! * wd * lr;
      m[i] += (g[i]! - m[i]!) * (1 - b1);
      v[i] += (g[i]! ** 2 - v[i]!) * (1 - b2);
      const alpha = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
      w[i] -= (alpha * m[i]!) / (Math.sqrt(v[i]!) + eps);
    });
  });
  return w;
}

const G = [[0.5, -1, 2], [0.1, 0.3, -0.2], [-1, 0.5, 0.7]];

test('nadam follows Keras 3 Nadam (u_t = beta_1 (1 - 0.5 * 0.96^t), running u_product)', () => {
  const w = tf.variable(tf.tensor1d([1, 2, -3]));
  const got = run(makeOptimizer({ type: 'nadam', params: { learning_rate: 0.01 } }), w, G);
  close(got, kerasNadam([1, 2, -3], G, 0.01));
});

test('adamw follows Keras AdamW (decoupled weight decay, Keras Adam epsilon placement)', () => {
  const w = tf.variable(tf.tensor1d([1, 2, -3]));
  const got = run(makeOptimizer({ type: 'adamw', params: { learning_rate: 0.01, weight_decay: 0.1 } }), w, G);
  close(got, kerasAdamW([1, 2, -3], G, 0.01, 0.1));
});

for (const type of ['nadam', 'adamw']) {
  test(`${type}: getWeights()/setWeights() carry the whole state (a resumed run continues exactly)`, async () => {
    const cfg: OptimizerConfig = { type, params: { learning_rate: 0.01 } };
    const w1 = tf.variable(tf.tensor1d([1, 2, -3]));
    const a = makeOptimizer(cfg);
    run(a, w1, G.slice(0, 2));
    const state = await a.getWeights();
    const w2 = tf.variable(w1.clone());
    const b = makeOptimizer(cfg);
    await b.setWeights(state);
    assert.equal(b.iterations, 2);
    close(run(b, w2, G.slice(2)), run(a, w1, G.slice(2)), 1e-6);
  });
}

test('scheduleValue: Keras formulas for exponential_decay, cosine_decay (with warmup) and piecewise_constant', () => {
  const exp = { type: 'exponential_decay' as const, params: { initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.5, staircase: false } };
  assert.equal(scheduleValue(exp, 0), 0.1);
  assert.ok(Math.abs(scheduleValue(exp, 5) - 0.1 * 0.5 ** 0.5) < 1e-12);
  assert.equal(scheduleValue({ ...exp, params: { ...exp.params, staircase: true } }, 15), 0.05);
  const cos = { type: 'cosine_decay' as const, params: { initial_learning_rate: 1, decay_steps: 100, alpha: 0.1, warmup_target: null, warmup_steps: 0 } };
  assert.equal(scheduleValue(cos, 0), 1);
  assert.ok(Math.abs(scheduleValue(cos, 50) - (0.9 * 0.5 + 0.1)) < 1e-12);
  assert.ok(Math.abs(scheduleValue(cos, 500) - 0.1) < 1e-12);
  const warm = { type: 'cosine_decay' as const, params: { initial_learning_rate: 0, decay_steps: 10, alpha: 0, warmup_target: 1, warmup_steps: 4 } };
  assert.equal(scheduleValue(warm, 2), 0.5);
  assert.equal(scheduleValue(warm, 4), 1);
  const pw = { type: 'piecewise_constant' as const, params: { boundaries: [2, 4], values: [1, 0.5, 0.1] } };
  assert.deepEqual([0, 2, 3, 4, 5].map((s) => scheduleValue(pw, s)), [1, 1, 0.5, 0.5, 0.1]);
});

test('a schedule is applied inside the optimizer at every step (SGD: w -= lr_t * g)', () => {
  const opt = makeOptimizer({ type: 'sgd', params: { learning_rate: 0.1 }, schedule: { type: 'piecewise_constant', params: { boundaries: [0, 1], values: [0.1, 0.01, 0.001] } } });
  const w = tf.variable(tf.tensor1d([0]));
  const steps: number[] = [];
  for (let i = 0; i < 3; i++) {
    steps.push(getLearningRate(opt));
    run(opt, w, [[1]]);
  }
  assert.deepEqual(steps, [0.1, 0.01, 0.001]);
  close(Array.from(w.dataSync()), [-(0.1 + 0.01 + 0.001)]);
});

test('setLearningRate on a scheduled optimizer scales the schedule (reduce_lr_on_plateau); a resumed one keeps the scale', async () => {
  const cfg: OptimizerConfig = { type: 'adam', params: { learning_rate: 1 }, schedule: { type: 'exponential_decay', params: { initial_learning_rate: 1, decay_steps: 1, decay_rate: 0.5, staircase: false } } };
  const opt = makeOptimizer(cfg);
  const w = tf.variable(tf.tensor1d([0]));
  run(opt, w, [[1], [1]]);
  assert.equal(getLearningRate(opt), 0.25);
  setLearningRate(opt, 0.025); // x0.1
  assert.equal(getLearningRate(opt), 0.025);
  run(opt, w, [[1]]);
  assert.ok(Math.abs(getLearningRate(opt) - 0.0125) < 1e-12);
  // Resume as the worker does: the config's learning_rate is the saved current rate, then setWeights.
  const state = await opt.getWeights();
  const resumed = makeOptimizer({ ...cfg, params: { learning_rate: getLearningRate(opt) } });
  await resumed.setWeights(state);
  run(resumed, tf.variable(tf.tensor1d([0])), [[1]]);
  assert.ok(Math.abs(getLearningRate(resumed) - 0.00625) < 1e-12);
});

const out = [{ name: 'out', shape: [1] }];

test('compile: Keras schedule objects and the native form; nadam, adamw with weight_decay', () => {
  const keras = resolveCompile({
    optimizer: { class_name: 'Adam', config: { learning_rate: { module: 'keras.optimizers.schedules', class_name: 'ExponentialDecay', config: { initial_learning_rate: 0.01, decay_steps: 100, decay_rate: 0.9, staircase: false, name: 'ExponentialDecay' }, registered_name: null }, loss_scale_factor: null, gradient_accumulation_steps: null } },
    loss: 'mse',
  }, out);
  assert.deepEqual(keras.optimizer.schedule, { type: 'exponential_decay', params: { initial_learning_rate: 0.01, decay_steps: 100, decay_rate: 0.9, staircase: false } });
  assert.equal(keras.optimizer.params.learning_rate, 0.01);
  const native = resolveCompile({ optimizer: { type: 'sgd', learning_rate: { type: 'cosine_decay', initial_learning_rate: 0.1, decay_steps: 1000 } }, loss: 'mse' }, out);
  assert.equal(native.optimizer.schedule?.type, 'cosine_decay');
  assert.equal(native.optimizer.schedule?.params.alpha, 0);
  assert.equal(resolveCompile({ optimizer: 'nadam', loss: 'mse' }, out).optimizer.type, 'nadam');
  const adamw = resolveCompile({ optimizer: { class_name: 'AdamW', config: { learning_rate: 0.002, weight_decay: 0.01 } }, loss: 'mse' }, out);
  assert.deepEqual(adamw.optimizer.params, { learning_rate: 0.002, weight_decay: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false });
});

test('compile: bad schedules are refused with paths', () => {
  const err = (compile: unknown, path: string) =>
    assert.throws(() => resolveCompile(compile, out), (e: unknown) => e instanceof SpecError && e.path === path);
  err({ optimizer: { type: 'sgd', learning_rate: { type: 'linear_decay' } }, loss: 'mse' }, 'compile.optimizer.learning_rate.type');
  err({ optimizer: { type: 'sgd', learning_rate: { type: 'exponential_decay', initial_learning_rate: 0.1, decay_steps: 10 } }, loss: 'mse' }, 'compile.optimizer.learning_rate.decay_rate');
  err({ optimizer: { type: 'sgd', learning_rate: { class_name: 'PiecewiseConstantDecay', config: { boundaries: [10], values: [0.1] } } }, loss: 'mse' }, 'compile.optimizer.learning_rate.config.values');
  err({ optimizer: { type: 'adam', weight_decay: 0.1 }, loss: 'mse' }, 'compile.optimizer.weight_decay');
});
