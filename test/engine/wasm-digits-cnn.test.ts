// A CNN trains on the wasm backend, in process, through the workers' own fit loop: the digits
// dataset (8x8 images) to >= 0.95 held-out accuracy. Also: withTrainingBackend keeps such a
// model on wasm once our kernels are in, and falls back to cpu only when one is really missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from '../../src/engine/wasm-training-kernels.ts';
import { missingWasmTrainingKernels, withTrainingBackend } from '../../src/engine/backend.ts';
import { withSeededRandom } from '../../src/engine/seeded-random.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { evaluate, fit } from '../../workers/train-loop.ts';
import { csvRows, shuffled } from '../helpers/stack.ts';

before(async () => {
  createRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');
  assert.ok(await tf.setBackend('wasm'));
  registerWasmTrainingKernels();
});
after(async () => {
  await tf.setBackend('cpu');
});

const spec = { type: 'sequential', layers: [
  { type: 'Conv2D', filters: 16, kernel_size: 3, activation: 'relu', padding: 'same', input_shape: [8, 8, 1] },
  { type: 'MaxPooling2D', pool_size: 2 },
  { type: 'Conv2D', filters: 32, kernel_size: 3, activation: 'relu', padding: 'same' },
  { type: 'MaxPooling2D', pool_size: 2 },
  { type: 'Flatten' },
  { type: 'Dense', units: 10, activation: 'softmax' }] };

test('a CNN trains on digits on wasm to >= 0.95 held-out accuracy', async () => {
  const rows = shuffled(csvRows('digits'));
  const split = 1400;
  const column = (part: number[][]) => ({
    x: { shape: [8, 8, 1], data: Float32Array.from(part.flatMap((r) => r.slice(0, 64).map((v) => v / 16))) },
    y: { shape: [] as number[], data: Float32Array.from(part.map((r) => r[64]!)) },
  });
  const train = column(rows.slice(0, split));
  const held = column(rows.slice(split));
  const model = withSeededRandom(1, () => buildModel(spec));
  const compiled = resolveCompile({ optimizer: { type: 'adam', learning_rate: 0.005 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] }, [{ name: 'out', shape: [10] }]);
  const tensors = tf.memory().numTensors;
  const t0 = performance.now();
  const result = await withTrainingBackend(spec, async () => {
    assert.equal(tf.getBackend(), 'wasm');
    return fit(model, compiled, ['out'], [train.x], [train.y], { epochs: 12, batchSize: 32, seed: 1 });
  });
  const seconds = (performance.now() - t0) / 1000;
  const ev = await evaluate(model, compiled, ['out'], [held.x], [held.y], 128);
  console.log(`digits CNN on wasm: ${(split * 12 / seconds).toFixed(0)} samples/s, held-out accuracy ${ev.accuracy!.toFixed(3)}, train ${result.history.accuracy!.at(-1)!.toFixed(3)}`);
  assert.equal(tf.memory().numTensors, tensors, 'fit leaves no tensors behind');
  assert.ok(ev.accuracy! >= 0.95, `held-out accuracy ${ev.accuracy}`);
  model.dispose();
});

test('withTrainingBackend: wasm when every gradient kernel is there, cpu when one is really missing', async () => {
  const embedding = { type: 'sequential', layers: [{ type: 'Embedding', input_dim: 5, output_dim: 2, input_shape: [3] }] };
  assert.deepEqual(missingWasmTrainingKernels(spec), []);
  assert.equal(await withTrainingBackend(embedding, async () => tf.getBackend()), 'wasm');
  const kernel = tf.getKernel('UnsortedSegmentSum', 'wasm')!;
  tf.unregisterKernel('UnsortedSegmentSum', 'wasm');
  try {
    assert.deepEqual(missingWasmTrainingKernels(embedding), ['UnsortedSegmentSum']);
    assert.equal(await withTrainingBackend(embedding, async () => tf.getBackend()), 'cpu');
    assert.equal(await withTrainingBackend(spec, async () => tf.getBackend()), 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
  } finally {
    tf.registerKernel(kernel);
  }
});
