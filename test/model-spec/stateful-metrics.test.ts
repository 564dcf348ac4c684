// Precision, recall and AUC from counts summed over all batches, as Keras's stateful metrics:
// the same value however the samples are split into batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { statefulMetric } from '../../src/model-spec/stateful-metrics.ts';
import { SpecError } from '../../src/errors.ts';

await initBackend('cpu');

const yTrue = [0, 0, 1, 1, 1, 0, 1, 0];
const yPred = [0.1, 0.4, 0.35, 0.8, 0.9, 0.6, 0.2, 0.05];

function epochValue(metric: unknown, batch: number, out = [{ name: 'o', shape: [1] }]) {
  const cfg = resolveCompile({ loss: 'binary_crossentropy', metrics: [metric] }, out).metrics[0]![0]!;
  const m = statefulMetric(cfg);
  const sums = new Float64Array(m.size);
  for (let i = 0; i < yTrue.length; i += batch) {
    const counts = tf.tidy(() => m.counts(tf.tensor2d(yTrue.slice(i, i + batch), [Math.min(batch, yTrue.length - i), 1]), tf.tensor2d(yPred.slice(i, i + batch), [Math.min(batch, yTrue.length - i), 1])));
    counts.dataSync().forEach((v, j) => (sums[j] += v));
    counts.dispose();
  }
  return { key: cfg.key, value: m.result(sums) };
}

test('precision and recall at 0.5 count over the whole epoch, whatever the batches', () => {
  // Predicted positive: 0.8, 0.9, 0.6 -> tp 2, fp 1; positives 4 -> recall 2/4.
  for (const batch of [1, 3, 8]) {
    assert.deepEqual(epochValue('precision', batch), { key: 'precision', value: 2 / 3 });
    assert.deepEqual(epochValue('recall', batch), { key: 'recall', value: 0.5 });
  }
  assert.equal(epochValue({ class_name: 'Precision', config: { thresholds: 0.3, name: 'p30' } }, 2).value, 3 / 5);
  assert.equal(epochValue({ class_name: 'Precision', config: { thresholds: 0.3, name: 'p30' } }, 2).key, 'p30');
});

test('AUC (ROC and PR) matches the exact area on this data, whatever the batches', () => {
  // Exact ROC AUC: of 16 positive/negative pairs, 12 are ranked right (sklearn gives 0.75).
  for (const batch of [1, 5, 8]) {
    const roc = epochValue('AUC', batch);
    assert.equal(roc.key, 'auc');
    assert.ok(Math.abs(roc.value - 0.75) < 1e-9, `${roc.value}`);
  }
  const pr = epochValue({ type: 'auc', curve: 'PR', num_thresholds: 1000 }, 3).value;
  assert.ok(pr > 0.6 && pr < 0.85, `${pr}`);
  assert.ok(Math.abs(epochValue({ type: 'auc', summation_method: 'minoring' }, 2).value - 0.75) < 0.02);
});

test('confusion metrics are validated', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ type: 'precision', thresholds: 2 }, /\[0, 1\]/],
    [{ type: 'recall', top_k: 0 }, /integer >= 1/],
    [{ type: 'auc', curve: 'XY' }, /"ROC" or "PR"/],
    [{ type: 'auc', multi_label: true }, /not supported/],
    [{ type: 'auc', bogus: 1 }, /unknown parameter "bogus"/],
  ];
  for (const [metric, message] of bad) {
    assert.throws(() => resolveCompile({ loss: 'mse', metrics: [metric] }, [{ name: 'o', shape: [1] }]), (e: unknown) => e instanceof SpecError && message.test(e.message));
  }
});

test('in the training loop: evaluate gives the whole-set precision, recall and AUC, not a mean of batch values', async () => {
  const { buildModel } = await import('../../src/model-spec/build-model.ts');
  const { evaluate, fit, predict } = await import('../../workers/train-loop.ts');
  const model = buildModel({ type: 'sequential', layers: [{ type: 'Dense', units: 1, activation: 'sigmoid', input_shape: [2], kernel_initializer: { class_name: 'RandomNormal', config: { seed: 1 } } }] });
  const n = 40;
  const xs = Float32Array.from({ length: n * 2 }, (_, i) => Math.sin(i * 1.3));
  const ys = Float32Array.from({ length: n }, (_, i) => (xs[2 * i]! + 0.3 * xs[2 * i + 1]! > 0 ? 1 : 0));
  const compiled = resolveCompile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['precision', 'recall', 'AUC', 'accuracy'] }, [{ name: 'o', shape: [1] }]);
  const x = [{ shape: [2], data: xs }];
  const y = [{ shape: [1], data: ys }];
  const hist = await fit(model, compiled, ['o'], x, y, { epochs: 2, batchSize: 4, validationSplit: 0.25, seed: 3 });
  assert.deepEqual(Object.keys(hist.history).sort(), ['accuracy', 'auc', 'loss', 'precision', 'recall', 'val_accuracy', 'val_auc', 'val_loss', 'val_precision', 'val_recall']);
  const result = await evaluate(model, compiled, ['o'], x, y, 3);
  const probs = (await predict(model, x, 8))[0]!.map((r) => (r as number[])[0]!);
  let tp = 0, fp = 0, fn = 0;
  probs.forEach((p, i) => {
    if (p > 0.5 && ys[i] === 1) tp++;
    else if (p > 0.5) fp++;
    else if (ys[i] === 1) fn++;
  });
  assert.ok(Math.abs(result.precision! - (tp + fp ? tp / (tp + fp) : 0)) < 1e-9, `${result.precision} vs ${tp}/${tp + fp}`);
  assert.ok(Math.abs(result.recall! - (tp + fn ? tp / (tp + fn) : 0)) < 1e-9, `${result.recall}`);
  // AUC from the whole set's predictions at once equals the one summed over batches of 3.
  const aucCfg = compiled.metrics[0]!.find((m) => m.key === 'auc')!;
  const m = statefulMetric(aucCfg);
  const counts = tf.tidy(() => m.counts(tf.tensor2d(Array.from(ys), [n, 1]), tf.tensor2d(probs, [n, 1])));
  const whole = m.result(counts.dataSync());
  counts.dispose();
  assert.ok(Math.abs(result.auc! - whole) < 1e-9, `${result.auc} vs ${whole}`);
  model.dispose();
});
