/**
 * The Normalization layer behaves as Keras's layers.Normalization: adapt (at fit time, from
 * the dataset's statistics or its data) sets mean and variance per feature, outputs are
 * standardised, the statistics are saved and loaded with the model, and a model already
 * adapted is not adapted again.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { SpecError } from '../../src/errors.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { adaptNormalizationLayers } from '../../src/datasets/normalization.ts';
import { Normalization as KerasNormalization, type NormalizationArgs } from '../../src/model-spec/keras-layers.ts';
import { StatsAccumulator } from '../../src/datasets/stats.ts';
import { fit } from '../../workers/train-loop.ts';

before(async () => {
  await initBackend('cpu');
});

/** The model-spec's Normalization layer, with `adapt` as the registry passes it from the spec. */
function Normalization(args: NormalizationArgs & { adapt?: boolean }): tf.layers.Layer {
  const layer = new KerasNormalization(args);
  // Until the layer keeps `adapt` itself (see the report), set it as the spec would.
  if (args.adapt && (layer as unknown as { adapt?: boolean }).adapt === undefined) (layer as unknown as { adapt: boolean }).adapt = true;
  return layer;
}

const close = (a: ArrayLike<number>, b: number[], tol = 1e-5) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

describe('Normalization', () => {
  test('Keras numbers: adapt on [[1, 2], [3, 4], [5, 6]] gives mean [3, 4], variance [8/3, 8/3]; 2*2+1 weights', async () => {
    const layer = Normalization({ adapt: true, inputShape: [2] });
    const model = tf.sequential({ layers: [layer] });
    assert.equal(model.countParams(), 5, 'mean, variance and count (Keras: 5 non-trainable params)');
    assert.equal(model.trainableWeights.length, 0);
    const x = { shape: [2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
    await adaptNormalizationLayers(model, [x], 3);
    const [mean, variance, count] = layer.getWeights();
    close(mean!.dataSync(), [3, 4]);
    close(variance!.dataSync(), [8 / 3, 8 / 3]);
    assert.equal(count!.dataSync()[0], 3);
    const out = (model.predict(tf.tensor2d([[1, 2]])) as tf.Tensor).dataSync();
    close(out, [-1.2247449, -1.2247449]);
  });

  test('adapts from stored per-feature statistics, like the data itself', async () => {
    const data = Float32Array.from({ length: 300 }, (_, i) => (i % 3) * 10 + Math.sin(i) * (1 + (i % 3)));
    const acc = new StatsAccumulator([3], false);
    acc.update(data);
    const s = acc.result();
    const info = { name: null, shape: [3], dtype: 'float32' as const, min: s.min, max: s.max, file: 'x-0.f32', mean: s.mean, std: s.std, features: s.features };
    const a = tf.sequential({ layers: [Normalization({ adapt: true, inputShape: [3] })] });
    const b = tf.sequential({ layers: [Normalization({ adapt: true, inputShape: [3] })] });
    await adaptNormalizationLayers(a, [{ shape: [3], info }], 100);
    await adaptNormalizationLayers(b, [{ shape: [3], data }], 100);
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    close(wa[0]!, wb[0]!);
    close(wa[1]!, wb[1]!, 1e-4);
    // Outputs on the data are standardised: mean 0, std 1 per feature.
    const out = (b.predict(tf.tensor2d(data, [100, 3])) as tf.Tensor);
    const { mean, variance } = tf.moments(out, 0);
    close(mean.dataSync(), [0, 0, 0], 1e-4);
    close(variance.dataSync(), [1, 1, 1], 1e-3);
  });

  test('axis null: one mean and variance; fixed mean/variance; invert', async () => {
    const all = tf.sequential({ layers: [Normalization({ adapt: true, axis: null, inputShape: [2] })] });
    await adaptNormalizationLayers(all, [{ shape: [2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }], 3);
    close(all.getWeights()[0]!.dataSync(), [3.5]);
    close(all.getWeights()[1]!.dataSync(), [35 / 12]);
    const fixed = tf.sequential({ layers: [Normalization({ mean: [1, 2], variance: [4, 9], inputShape: [2] })] });
    assert.equal(fixed.countParams(), 0);
    close((fixed.predict(tf.tensor2d([[3, 8]])) as tf.Tensor).dataSync(), [1, 2]);
    const inv = tf.sequential({ layers: [Normalization({ mean: [1, 2], variance: [4, 9], invert: true, inputShape: [2] })] });
    close((inv.predict(tf.tensor2d([[1, 2]])) as tf.Tensor).dataSync(), [3, 8]);
  });

  test('fit adapts once (a later fit keeps the statistics); saved and loaded with the model', async () => {
    const model = tf.sequential({ layers: [
      Normalization({ adapt: true, inputShape: [2], name: 'norm' }),
      tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    ] });
    const compiled = resolveCompile({ optimizer: 'sgd', loss: 'mse' }, [{ name: 'out', shape: [1] }]);
    const x = { shape: [2], data: Float32Array.from([100, 1, 200, 2, 300, 3, 400, 4]) };
    const y = { shape: [], data: Float32Array.from([1, 2, 3, 4]) };
    await fit(model, compiled, ['out'], [x], [y], { epochs: 1, batchSize: 2, seed: 1 });
    const norm = model.getLayer('norm');
    close(norm.getWeights()[0]!.dataSync(), [250, 2.5]);
    const other = { shape: [2], data: Float32Array.from([0, 0, 1, 1]) };
    await fit(model, compiled, ['out'], [other], [{ shape: [], data: Float32Array.from([0, 1]) }], { epochs: 1, batchSize: 2, seed: 1 });
    close(norm.getWeights()[0]!.dataSync(), [250, 2.5], 0);

    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    assert.match(JSON.stringify(saved!.modelTopology), /"class_name":"Normalization"/);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    const probe = tf.tensor2d([[250, 2.5], [100, 1]]);
    close((loaded.predict(probe) as tf.Tensor).dataSync(), Array.from((model.predict(probe) as tf.Tensor).dataSync()));
    close(loaded.getLayer('norm').getWeights()[1]!.dataSync(), [12500, 1.25], 1e-2);
  });

  test('adapt needs the layer right on a model input', async () => {
    const input = tf.input({ shape: [2] });
    const h = tf.layers.dense({ units: 2 }).apply(input) as tf.SymbolicTensor;
    const out = Normalization({ adapt: true }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    await assert.rejects(adaptNormalizationLayers(model, [{ shape: [2], data: Float32Array.from([1, 2]) }], 1), (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.equal(err.code, 'FIT_OPTIONS_INVALID');
      assert.match(err.message, /does not take a model input directly/);
      return true;
    });
  });
});

test('a spec with {"type": "Normalization", "adapt": true} adapts at fit time and keeps adapt when saved', async () => {
  const { buildModel } = await import('../../src/model-spec/build-model.ts');
  const model = buildModel({ type: 'sequential', layers: [{ type: 'Normalization', adapt: true, input_shape: [2] }, { type: 'Dense', units: 1 }] });
  assert.equal((model.layers[0] as unknown as { adapt: boolean }).adapt, true);
  assert.equal((model.layers[0]!.getConfig() as { adapt?: boolean }).adapt, true);
  const x = { shape: [2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  const y = { shape: [], data: Float32Array.from([0, 1, 0]) };
  await fit(model, resolveCompile({ loss: 'mse' }, [{ name: 'o', shape: [1] }]), ['o'], [x], [y], { epochs: 1, batchSize: 3, shuffle: false });
  const [mean, variance] = model.layers[0]!.getWeights();
  close(mean!.dataSync(), [3, 4]);
  close(variance!.dataSync(), [8 / 3, 8 / 3]);
  assert.throws(() => buildModel({ type: 'sequential', layers: [{ type: 'Normalization', adapt: true, mean: 0, variance: 1, input_shape: [2] }] }), (e: unknown) => e instanceof SpecError && /adapt or mean\/variance/.test(e.message));
  model.dispose();
});
