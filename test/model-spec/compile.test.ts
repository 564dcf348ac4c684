/**
 * compile resolution, Keras losses and metrics, optimizers, target shape checks.
 * Expected loss values are the ones printed in the Keras 2 docstrings (keras/losses.py,
 * keras/metrics.py) for the same inputs, re-derived with numpy from the Keras formulas
 * where the docstring gives only the batch mean.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { SpecError } from '../../src/errors.ts';
import { checkTargetShape, resolveCompile } from '../../src/model-spec/compile.ts';
import { lossFunction } from '../../src/model-spec/losses.ts';
import { metricFunction } from '../../src/model-spec/metrics.ts';
import { makeOptimizer } from '../../src/model-spec/optimizers.ts';
import type { LossConfig, TensorInfo } from '../../src/model-spec/types.ts';

before(async () => {
  await initBackend('cpu');
});

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-4, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Per-sample values of a loss on plain arrays. */
function lossValues(name: string, yTrue: number[] | number[][], yPred: number[][], params: Record<string, unknown> = {}): Float32Array {
  const before = tf.memory().numTensors;
  const t = tf.tensor(yTrue);
  const p = tf.tensor(yPred);
  const out = lossFunction({ name, params })(t, p);
  const values = out.dataSync() as Float32Array;
  assert.deepEqual(out.shape, [yPred.length], `${name} returns one value per sample`);
  tf.dispose([t, p, out]);
  assert.equal(tf.memory().numTensors, before, `${name} leaks no tensors`);
  return values;
}

function metricValues(fn: string, yTrue: number[] | number[][], yPred: number[][], params: Record<string, unknown> = {}): Float32Array {
  const t = tf.tensor(yTrue);
  const p = tf.tensor(yPred);
  const out = metricFunction({ key: fn, fn, params })(t, p);
  const values = out.dataSync() as Float32Array;
  tf.dispose([t, p, out]);
  return values;
}

// The inputs most Keras docstrings use.
const T2 = [[0, 1], [0, 0]];
const P2 = [[0.6, 0.4], [0.4, 0.6]];

describe('losses (Keras 2 formulas)', () => {
  test('regression losses', () => {
    // Keras docstrings: y_true=[[0,1],[0,0]], y_pred=[[1,1],[1,0]] -> mse 0.5, mae 0.5, msle 0.240 (log(2)^2 / 2 per sample).
    close(lossValues('mse', [[0, 1], [0, 0]], [[1, 1], [1, 0]]), [0.5, 0.5], 1e-5, 'mse');
    close(lossValues('mean_absolute_error', [[0, 1], [0, 0]], [[1, 1], [1, 0]]), [0.5, 0.5], 1e-5, 'mae');
    close(lossValues('msle', [[0, 1], [0, 0]], [[1, 1], [1, 0]]), [0.2402264, 0.2402264], 1e-5, 'msle');
    // Keras: MeanAbsolutePercentageError()([[2,1],[2,3]], [[1,1],[1,0]]) = 50.0; per sample 100*mean(|t-p|/|t|) = [25, 75].
    close(lossValues('mape', [[2, 1], [2, 3]], [[1, 1], [1, 0]]), [25, 75], 1e-5, 'mape');
    // Keras: Huber()(T2, P2) = 0.155; per sample [0.18, 0.13]; with delta 0.3 (numpy, Keras formula): [0.135, 0.105].
    close(lossValues('huber', T2, P2), [0.18, 0.13], 1e-5, 'huber');
    close(lossValues('huber_loss', T2, P2, { delta: 0.3 }), [0.135, 0.105], 1e-5, 'huber delta');
    // Keras: LogCosh()([[0,1],[0,0]], [[1,1],[0,0]]) = 0.108; per sample [log(cosh(1))/2, 0] = [0.21689, 0].
    close(lossValues('logcosh', [[0, 1], [0, 0]], [[1, 1], [0, 0]]), [0.2168904, 0], 1e-5, 'log_cosh');
    // Keras: Poisson()([[0,1],[0,0]], [[1,1],[0,0]]) = 0.5; per sample [1, 0] (less the 1e-7 inside the log).
    close(lossValues('poisson', [[0, 1], [0, 0]], [[1, 1], [0, 0]]), [1, 0], 1e-5, 'poisson');
    // Keras: CosineSimilarity()([[0,1],[1,1]], [[1,0],[1,1]]) = -0.5; per sample [0, -1].
    close(lossValues('cosine_similarity', [[0, 1], [1, 1]], [[1, 0], [1, 1]]), [0, -1], 1e-5, 'cosine');
  });

  test('crossentropies', () => {
    // Keras: tf.keras.losses.binary_crossentropy([[0,1]], [[0.4,0.6]]) = 0.5108 (-log 0.6).
    close(lossValues('binary_crossentropy', [[0, 1]], [[0.4, 0.6]]), [0.5108254], 1e-5, 'bce');
    // Keras docstring: binary_crossentropy(T2, P2) = [0.916, 0.714], BinaryCrossentropy()(T2, P2) = 0.815.
    close(lossValues('binaryCrossentropy', T2, P2), [0.9162905, 0.713558], 1e-5, 'bce docstring');
    // label_smoothing 0.2 -> targets 0.1 / 0.9 (numpy with the Keras formula): [0.875744, 0.713558].
    close(lossValues('binary_crossentropy', T2, P2, { label_smoothing: 0.2 }), [0.875744, 0.713558], 1e-5, 'bce smoothing');
    // Keras docstring (from_logits): BinaryCrossentropy(from_logits=True)([0,1,0,0], [-18.6,0.51,2.94,-12.8]) = 0.865.
    close(lossValues('binary_crossentropy', [[0, 1, 0, 0]], [[-18.6, 0.51, 2.94, -12.8]], { from_logits: true }), [0.865458], 1e-5, 'bce logits');
    // Keras docstring: categorical_crossentropy([[0,1,0],[0,0,1]], [[.05,.95,0],[.1,.8,.1]]) = [0.0513, 2.303].
    const ct = [[0, 1, 0], [0, 0, 1]];
    const cp = [[0.05, 0.95, 0], [0.1, 0.8, 0.1]];
    close(lossValues('categorical_crossentropy', ct, cp), [0.0512933, 2.3025851], 1e-5, 'cce');
    // label_smoothing 0.1 over 3 classes (numpy, Keras formula): [0.685001, 2.233270].
    close(lossValues('categoricalCrossentropy', ct, cp, { label_smoothing: 0.1 }), [0.685001, 2.23327], 1e-5, 'cce smoothing');
    // from logits: -log softmax(logits)[label] (numpy): [0.464369, 0.109601].
    const logits = [[1, 2, 0.5], [0.2, 0.1, 3]];
    close(lossValues('categorical_crossentropy', ct, logits, { from_logits: true }), [0.4643688, 0.1096015], 1e-5, 'cce logits');
    // Keras docstring: sparse_categorical_crossentropy([1, 2], same y_pred) = [0.0513, 2.303]; labels [n] or [n, 1].
    close(lossValues('sparse_categorical_crossentropy', [1, 2], cp), [0.0512933, 2.3025851], 1e-5, 'scce');
    close(lossValues('sparseCategoricalCrossentropy', [[1], [2]], cp), [0.0512933, 2.3025851], 1e-5, 'scce [n,1]');
    close(lossValues('sparse_categorical_crossentropy', [1, 2], logits, { from_logits: true }), [0.4643688, 0.1096015], 1e-5, 'scce logits');
  });

  test('hinge and divergence losses', () => {
    // Keras docstrings on (T2, P2): Hinge 1.3 = mean [1.1, 1.5] (0/1 labels become -1/1), SquaredHinge 1.86 = mean [1.46, 2.26],
    // CategoricalHinge 1.4 = mean [1.2, 1.6], KLDivergence 0.458 = mean [0.916, ~0].
    close(lossValues('hinge', T2, P2), [1.1, 1.5], 1e-5, 'hinge');
    close(lossValues('squared_hinge', T2, P2), [1.46, 2.26], 1e-5, 'squared_hinge');
    close(lossValues('categorical_hinge', T2, P2), [1.2, 1.6], 1e-5, 'categorical_hinge');
    close(lossValues('kld', T2, P2), [0.9162892, -3.08e-6], 1e-4, 'kld');
    // Labels already -1/1 are kept as they are: max(1 - (-1 * 0.6), 0) = 1.6, max(1 - 0.4, 0) = 0.6.
    close(lossValues('hinge', [[-1, 1]], [[0.6, 0.4]]), [1.1], 1e-5, 'hinge -1/1');
  });

  test('a [n] target against a [n, 1] output is aligned, and extra axes are averaged per sample', () => {
    close(lossValues('mse', [1, 2], [[0], [0]]), [1, 4], 1e-6, 'aligned');
    // [1, 2, 2] prediction (a sequence of 2 steps): per sample mean over both axes = (1 + 0 + 4 + 0) / 4.
    const t = tf.tensor([[[0, 0], [0, 0]]]);
    const p = tf.tensor([[[1, 0], [2, 0]]]);
    const out = lossFunction({ name: 'mse', params: {} })(t, p);
    close(out.dataSync(), [1.25], 1e-6, 'sequence');
    tf.dispose([t, p, out]);
  });

  test('gradients flow through every loss', () => {
    const cases: Array<[string, number[][] | number[], number[][], Record<string, unknown>?]> = [
      ['mse', T2, P2], ['mae', T2, P2], ['mape', T2, P2], ['msle', T2, P2], ['binary_crossentropy', T2, P2],
      ['categorical_crossentropy', T2, P2], ['sparse_categorical_crossentropy', [1, 0], P2], ['hinge', T2, P2],
      ['squared_hinge', T2, P2], ['categorical_hinge', T2, P2], ['kld', T2, P2], ['poisson', T2, P2],
      ['cosine_similarity', T2, P2], ['huber', T2, P2], ['log_cosh', T2, P2],
      ['binary_crossentropy', T2, P2, { from_logits: true }], ['sparse_categorical_crossentropy', [1, 0], P2, { from_logits: true }],
    ];
    for (const [name, t, p, params] of cases) {
      const yt = tf.tensor(t);
      const yp = tf.tensor(p);
      const g = tf.grad((x: tf.Tensor) => lossFunction({ name, params: params ?? {} })(yt, x).mean())(yp);
      assert.ok(Array.from(g.dataSync()).every(Number.isFinite), `${name} has a finite gradient`);
      tf.dispose([yt, yp, g]);
    }
  });
});

describe('metrics (Keras 2 functions)', () => {
  test('accuracies', () => {
    // Keras docstrings: binary_accuracy([[1],[1],[0],[0]], [[0.98],[1],[0],[0.6]]) -> mean 0.75.
    close(metricValues('binary_accuracy', [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], { threshold: 0.5 }), [1, 1, 1, 0], 0, 'binary');
    // categorical_accuracy([[0,0,1],[0,1,0]], [[0.1,0.9,0.8],[0.05,0.95,0]]) = [0, 1]; sparse with labels [2, 1] the same.
    const p = [[0.1, 0.9, 0.8], [0.05, 0.95, 0]];
    close(metricValues('categorical_accuracy', [[0, 0, 1], [0, 1, 0]], p), [0, 1], 0, 'categorical');
    close(metricValues('sparse_categorical_accuracy', [2, 1], p), [0, 1], 0, 'sparse');
    close(metricValues('sparse_categorical_accuracy', [[2], [1]], p), [0, 1], 0, 'sparse [n,1]');
    // TopKCategoricalAccuracy(k=1) on the same -> 0.5; k=2 -> both in the top 2.
    close(metricValues('top_k_categorical_accuracy', [[0, 0, 1], [0, 1, 0]], p, { k: 1 }), [0, 1], 0, 'top1');
    close(metricValues('top_k_categorical_accuracy', [[0, 0, 1], [0, 1, 0]], p, { k: 2 }), [1, 1], 0, 'top2');
    close(metricValues('sparse_top_k_categorical_accuracy', [2, 1], p, { k: 1 }), [0, 1], 0, 'sparse top1');
    close(metricValues('sparse_top_k_categorical_accuracy', [2, 1], p, { k: 5 }), [1, 1], 0, 'sparse top5');
  });

  test('cosine_similarity is positive as a metric; losses double as metrics', () => {
    // Keras: metrics.CosineSimilarity()([[0,1],[1,1]], [[1,0],[1,1]]) = 0.5; per sample [0, 1].
    close(metricValues('cosine_similarity', [[0, 1], [1, 1]], [[1, 0], [1, 1]]), [0, 1], 1e-6, 'cosine metric');
    close(metricValues('mean_squared_error', [[0, 1], [0, 0]], [[1, 1], [1, 0]]), [0.5, 0.5], 1e-6, 'mse metric');
  });
});

const ONE: TensorInfo[] = [{ name: 'out', shape: [3] }];
const TWO: TensorInfo[] = [{ name: 'out1', shape: [3] }, { name: 'out2', shape: [1] }];

describe('resolveCompile', () => {
  test('Keras defaults for optimizers', () => {
    const c = resolveCompile({ loss: 'mse' }, ONE);
    // Keras compile() defaults to rmsprop.
    assert.deepEqual(c.optimizer, { type: 'rmsprop', params: { learning_rate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false } });
    assert.deepEqual(resolveCompile({ optimizer: 'sgd', loss: 'mse' }, ONE).optimizer.params, { learning_rate: 0.01, momentum: 0, nesterov: false });
    assert.deepEqual(resolveCompile({ optimizer: 'Adagrad', loss: 'mse' }, ONE).optimizer, {
      type: 'adagrad', params: { learning_rate: 0.001, initial_accumulator_value: 0.1, epsilon: 1e-7 },
    });
    assert.equal(resolveCompile({ optimizer: 'adadelta', loss: 'mse' }, ONE).optimizer.params.rho, 0.95);
    assert.equal(resolveCompile({ optimizer: 'adamax', loss: 'mse' }, ONE).optimizer.params.epsilon, 1e-7);
  });

  test('optimizer objects: type/name key, lr alias, camelCase, Keras class_name form', () => {
    const a = resolveCompile({ optimizer: { type: 'adam', lr: 0.01, beta1: 0.8 }, loss: 'mse' }, ONE).optimizer;
    assert.deepEqual(a, { type: 'adam', params: { learning_rate: 0.01, beta_1: 0.8, beta_2: 0.999, epsilon: 1e-7, amsgrad: false } });
    const s = resolveCompile({ optimizer: { name: 'SGD', learningRate: 0.1, momentum: 0.9, useNesterov: true }, loss: 'mse' }, ONE).optimizer;
    assert.deepEqual(s, { type: 'sgd', params: { learning_rate: 0.1, momentum: 0.9, nesterov: true } });
    // What Keras 2 writes for an optimizer (get_config inside class_name/config), neutral keys included.
    const k = resolveCompile({
      optimizer: { class_name: 'Adam', config: { name: 'Adam', learning_rate: 0.002, decay: 0, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false, clipnorm: null, jit_compile: true } },
      loss: 'mse',
    }, ONE).optimizer;
    assert.equal(k.params.learning_rate, 0.002);
  });

  test('losses: names, aliases, tfjs camelCase, objects, lists, per-output objects', () => {
    assert.deepEqual(resolveCompile({ loss: 'mse' }, ONE).losses, [{ name: 'mean_squared_error', params: {} }]);
    assert.deepEqual(resolveCompile({ loss: 'meanSquaredError' }, ONE).losses[0]!.name, 'mean_squared_error');
    assert.deepEqual(resolveCompile({ loss: 'logcosh' }, ONE).losses[0]!.name, 'log_cosh');
    assert.deepEqual(resolveCompile({ loss: 'kullback_leibler_divergence' }, ONE).losses[0]!.name, 'kl_divergence');
    assert.deepEqual(resolveCompile({ loss: { type: 'binary_crossentropy', from_logits: true, labelSmoothing: 0.1 } }, ONE).losses, [
      { name: 'binary_crossentropy', params: { from_logits: true, label_smoothing: 0.1 } },
    ]);
    assert.deepEqual(resolveCompile({ loss: { class_name: 'Huber', config: { delta: 2, reduction: 'auto', name: 'huber_loss' } } }, ONE).losses, [
      { name: 'huber', params: { delta: 2 } },
    ]);
    // One loss for several outputs applies to each.
    assert.deepEqual(resolveCompile({ loss: 'mae' }, TWO).losses.map((l) => l.name), ['mean_absolute_error', 'mean_absolute_error']);
    assert.deepEqual(resolveCompile({ loss: ['sparse_categorical_crossentropy', 'mse'] }, TWO).losses.map((l) => l.name), [
      'sparse_categorical_crossentropy', 'mean_squared_error',
    ]);
    // Keyed by output name, in any key order -> output order.
    assert.deepEqual(resolveCompile({ loss: { out2: 'mse', out1: 'categorical_crossentropy' } }, TWO).losses.map((l) => l.name), [
      'categorical_crossentropy', 'mean_squared_error',
    ]);
  });

  test('loss_weights: list, object (missing outputs weigh 1), camelCase', () => {
    assert.deepEqual(resolveCompile({ loss: 'mse' }, TWO).loss_weights, [1, 1]);
    assert.deepEqual(resolveCompile({ loss: 'mse', loss_weights: [1, 0.5] }, TWO).loss_weights, [1, 0.5]);
    assert.deepEqual(resolveCompile({ loss: 'mse', lossWeights: { out2: 0.25 } }, TWO).loss_weights, [1, 0.25]);
  });

  test('accuracy resolves as Keras does, keys keep the name as written', () => {
    const acc = (loss: unknown, outputs: TensorInfo[]) => resolveCompile({ loss, metrics: ['accuracy'] }, outputs).metrics[0]![0]!.fn;
    assert.equal(acc('sparse_categorical_crossentropy', ONE), 'sparse_categorical_accuracy');
    assert.equal(acc('categorical_crossentropy', ONE), 'categorical_accuracy');
    assert.equal(acc('binary_crossentropy', ONE), 'binary_accuracy');
    assert.equal(acc('mse', [{ name: 'o', shape: [1] }]), 'binary_accuracy');
    assert.equal(acc('mse', ONE), 'categorical_accuracy');
    const ce = resolveCompile({ loss: 'sparse_categorical_crossentropy', metrics: ['crossentropy'] }, ONE).metrics[0]![0]!;
    assert.equal(ce.fn, 'sparse_categorical_crossentropy');

    const m = resolveCompile({
      loss: 'sparse_categorical_crossentropy',
      metrics: ['acc', 'accuracy', 'mse', 'meanAbsoluteError', { type: 'sparse_top_k_categorical_accuracy', k: 3, name: 'top3' }, { type: 'sparse_top_k_categorical_accuracy' }],
    }, ONE).metrics[0]!;
    assert.deepEqual(m.map((x) => x.key), ['acc', 'accuracy', 'mse', 'mean_absolute_error', 'top3', 'sparse_top_k_categorical_accuracy']);
    assert.deepEqual(m.map((x) => x.fn), [
      'sparse_categorical_accuracy', 'sparse_categorical_accuracy', 'mean_squared_error', 'mean_absolute_error',
      'sparse_top_k_categorical_accuracy', 'sparse_top_k_categorical_accuracy',
    ]);
    assert.deepEqual(m[4]!.params, { k: 3 });
    assert.deepEqual(m[5]!.params, { k: 5 });
  });

  test('metrics: a list goes to every output (resolved per output), an object per output', () => {
    const both = resolveCompile({ loss: ['sparse_categorical_crossentropy', 'mse'], metrics: ['accuracy'] }, TWO).metrics;
    assert.deepEqual(both.map((l) => l.map((m) => m.fn)), [['sparse_categorical_accuracy'], ['binary_accuracy']]);
    const per = resolveCompile({ loss: ['sparse_categorical_crossentropy', 'mse'], metrics: { out2: 'mae', out1: ['acc'] } }, TWO).metrics;
    assert.deepEqual(per.map((l) => l.map((m) => m.key)), [['acc'], ['mae']]);
    assert.deepEqual(resolveCompile({ loss: 'mse', metrics: { out1: ['mse'] } }, TWO).metrics, [[{ key: 'mse', fn: 'mean_squared_error', params: {} }], []]);
  });

  test('bad compile objects give COMPILE_INVALID with the path of the mistake', () => {
    const cases: Array<[unknown, TensorInfo[], string, RegExp?]> = [
      ['adam', ONE, 'compile', /must be an object/],
      [{ optimizer: 'lamb', loss: 'mse' }, ONE, 'compile.optimizer', /unknown optimizer "lamb".*sgd, adam, rmsprop.*nadam, adamw/],
      [{ optimizer: { type: 'adam', beta_1: 1.5 }, loss: 'mse' }, ONE, 'compile.optimizer.beta_1', /\[0, 1\)/],
      [{ optimizer: { type: 'sgd', foo: 1 }, loss: 'mse' }, ONE, 'compile.optimizer.foo', /accepted: learning_rate, momentum, nesterov/],
      [{ optimizer: { type: 'adam', amsgrad: true }, loss: 'mse' }, ONE, 'compile.optimizer.amsgrad'],
      [{ optimizer: { type: 'rmsprop', lr: 0 }, loss: 'mse' }, ONE, 'compile.optimizer.lr', /> 0/],
      [{ optimizer: { type: 'adam', clipnorm: 1 }, loss: 'mse' }, ONE, 'compile.optimizer.clipnorm', /not supported/],
      [{ optimizer: 'adam' }, ONE, 'compile.loss', /required/],
      [{ loss: 'mean_squared_errror' }, ONE, 'compile.loss', /unknown loss/],
      [{ loss: ['mse'] }, TWO, 'compile.loss', /1 losses but the model has 2 output/],
      [{ loss: ['mse', 'nope'] }, TWO, 'compile.loss[1]', /unknown loss "nope"/],
      [{ loss: { out1: 'mse', out3: 'mse' } }, TWO, 'compile.loss.out3', /not an output/],
      [{ loss: { out1: 'mse' } }, TWO, 'compile.loss', /no loss for output "out2"/],
      [{ loss: { type: 'huber', delta: -1 } }, ONE, 'compile.loss.delta', /> 0/],
      [{ loss: { type: 'binary_crossentropy', from_logits: 'yes' } }, ONE, 'compile.loss.from_logits', /boolean/],
      [{ loss: { type: 'mse', from_logits: true } }, ONE, 'compile.loss.from_logits', /takes none/],
      [{ loss: 'mse', loss_weights: [1] }, TWO, 'compile.loss_weights', /1 weights/],
      [{ loss: 'mse', loss_weights: [1, -1] }, TWO, 'compile.loss_weights[1]', />= 0/],
      [{ loss: 'mse', loss_weights: { out9: 1 } }, TWO, 'compile.loss_weights.out9'],
      [{ loss: 'mse', metrics: ['mean_iou'] }, ONE, 'compile.metrics[0]', /not supported yet/],
      [{ loss: 'mse', metrics: [{ type: 'AUC', curve: 'XY' }] }, ONE, 'compile.metrics[0].curve', /"ROC" or "PR"/],
      [{ loss: 'mse', metrics: [{ type: 'f1_score' }] }, ONE, 'compile.metrics[0].type', /not supported yet/],
      [{ loss: 'mse', metrics: ['accuracy', 'bogus'] }, ONE, 'compile.metrics[1]', /unknown metric "bogus"/],
      [{ loss: 'mse', metrics: { out3: ['mse'] } }, TWO, 'compile.metrics.out3', /not an output/],
      [{ loss: 'mse', metrics: [{ type: 'top_k_categorical_accuracy', k: 0 }] }, ONE, 'compile.metrics[0].k'],
      [{ loss: 'mse', metrics: [{ type: 'top_k_categorical_accuracy', k: 2.5 }] }, ONE, 'compile.metrics[0].k'],
      [{ loss: 'mse', metrics: ['mse', 'mse'] }, ONE, 'compile.metrics[1]', /twice/],
      [{ loss: 'mse', metrics: 42 }, ONE, 'compile.metrics'],
      [{ loss: 'mse', run_eagerly: true }, ONE, 'compile.run_eagerly', /unknown compile option/],
    ];
    for (const [compile, outputs, path, message] of cases) {
      assert.throws(
        () => resolveCompile(compile, outputs),
        (err: unknown) => {
          assert.ok(err instanceof SpecError, `${JSON.stringify(compile)} throws a SpecError`);
          assert.equal(err.code, 'COMPILE_INVALID');
          assert.equal(err.path, path, `${JSON.stringify(compile)}: ${err.message}`);
          if (message) assert.match(err.message, message);
          return true;
        },
      );
    }
    // The prefix is where compile sits in the request.
    assert.throws(() => resolveCompile({ loss: 'nope' }, ONE, 'body.compile'), (e: unknown) => e instanceof SpecError && e.path === 'body.compile.loss');
  });
});

describe('makeOptimizer', () => {
  test('maps onto the tfjs classes with Keras defaults', () => {
    const cfg = (type: string, params: Record<string, number | boolean> = {}) => resolveCompile({ optimizer: { type, ...params }, loss: 'mse' }, ONE).optimizer;
    const cases: Array<[ReturnType<typeof cfg>, string, Record<string, unknown>]> = [
      [cfg('sgd'), 'SGD', { learningRate: 0.01 }],
      [cfg('sgd', { momentum: 0.9, nesterov: true }), 'Momentum', { learningRate: 0.01, momentum: 0.9, useNesterov: true }],
      [cfg('adam'), 'Adam', { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }],
      [cfg('rmsprop', { centered: true }), 'RMSProp', { learningRate: 0.001, decay: 0.9, momentum: 0, epsilon: 1e-7, centered: true }],
      [cfg('adadelta'), 'Adadelta', { learningRate: 0.001, rho: 0.95, epsilon: 1e-7 }],
      [cfg('adamax'), 'Adamax', { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }],
      [cfg('adagrad'), 'Adagrad', { learningRate: 0.001, initialAccumulatorValue: 0.1 }],
    ];
    for (const [c, className, config] of cases) {
      const opt = makeOptimizer(c);
      assert.equal(opt.getClassName(), className);
      const got = opt.getConfig();
      for (const [k, v] of Object.entries(config)) assert.equal(got[k], v, `${className}.${k}`);
      opt.dispose();
    }
  });

  test('adagrad honours its epsilon and leaks nothing', () => {
    const before = tf.memory().numTensors;
    const init = tf.tensor1d([1, 2]);
    const v = tf.variable(init);
    init.dispose();
    const opt = makeOptimizer({ type: 'adagrad', params: { learning_rate: 0.5, initial_accumulator_value: 0.1, epsilon: 0.01 } });
    opt.minimize(() => v.square().sum() as tf.Scalar, false, [v]);
    // grad = 2v = [2, 4]; acc = 0.1 + g^2; v -= 0.5 g / sqrt(acc + 0.01) (tfjs places epsilon inside the root).
    const expected = [1 - (0.5 * 2) / Math.sqrt(4.11), 2 - (0.5 * 4) / Math.sqrt(16.11)];
    close(v.dataSync(), expected, 1e-5, 'adagrad step');
    opt.dispose();
    v.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test('centered rmsprop stays finite when a gradient is constant (tfjs 4.22 gives NaN there)', () => {
    const before = tf.memory().numTensors;
    const init = tf.tensor1d([1, 2]);
    const v = tf.variable(init);
    init.dispose();
    const opt = makeOptimizer({ type: 'rmsprop', params: { learning_rate: 0.1, centered: true, momentum: 0.5 } });
    // d/dv of sum(v * [0, 1]) = [0, 1]: constant, the first component always zero.
    for (let i = 0; i < 3; i++) opt.minimize(() => v.mul(tf.tensor1d([0, 1])).sum() as tf.Scalar, false, [v]);
    const values = Array.from(v.dataSync());
    assert.ok(values.every(Number.isFinite), `finite: ${values}`);
    assert.equal(values[0], 1);
    // First step (TF's ApplyCenteredRMSProp): ms = 0.1, mg = 0.1, mom = 0.1 * 1 / sqrt(0.1 - 0.01 + 1e-7) = 0.33333.
    assert.ok(values[1]! < 2 - 0.33, `moved: ${values}`);
    opt.dispose();
    v.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('checkTargetShape', () => {
  const scce: LossConfig = { name: 'sparse_categorical_crossentropy', params: {} };
  const mse: LossConfig = { name: 'mean_squared_error', params: {} };
  const out3: TensorInfo = { name: 'out', shape: [3] };
  test('sparse labels', () => {
    assert.equal(checkTargetShape(out3, scce, []), null);
    assert.equal(checkTargetShape(out3, scce, [1]), null);
    assert.equal(checkTargetShape(out3, scce, [1], { min: 0, max: 2 }), null);
    assert.match(checkTargetShape(out3, scce, [3])!, /expects integer class labels of shape \[\] or \[1\].*got \[3\]/);
    assert.match(checkTargetShape(out3, scce, [], { min: 0, max: 3 })!, /labels in \[0, 2\], got labels in \[0, 3\]/);
    assert.match(checkTargetShape(out3, scce, [], { min: 0, max: 1.5 })!, /integer/);
    assert.match(checkTargetShape({ name: 'out', shape: [1] }, scce, [])!, /last dimension >= 2/);
    // A sequence output [T, k] takes labels [T] or [T, 1].
    assert.equal(checkTargetShape({ name: 'seq', shape: [null, 5] }, scce, [7]), null);
  });
  test('other losses need the output shape ([] equals [1], null matches anything)', () => {
    assert.equal(checkTargetShape(out3, mse, [3]), null);
    assert.equal(checkTargetShape({ name: 'o', shape: [1] }, mse, []), null);
    assert.equal(checkTargetShape({ name: 'o', shape: [] }, mse, [1]), null);
    assert.equal(checkTargetShape({ name: 'o', shape: [null, 4] }, mse, [9, 4]), null);
    assert.match(checkTargetShape(out3, mse, [4])!, /expects targets of shape \[3\] per sample, got \[4\]/);
    assert.match(checkTargetShape(out3, { name: 'categorical_crossentropy', params: {} }, [])!, /sparse_categorical_crossentropy/);
  });
});
