// The fast Orthogonal initializer: orthogonal for square, tall and wide shapes, gain applied,
// the same matrix as tfjs's own for the same seed, used by LSTM/GRU/SimpleRNN by default and by
// the spec's "orthogonal", repeatable under withSeededRandom, and quick for an LSTM(512).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { installFastOrthogonal, signCorrectedQ } from '../../src/engine/fast-orthogonal.ts';
import { withSeededRandom } from '../../src/engine/seeded-random.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';

type Apply = (shape: number[], dtype?: tf.DataType) => tf.Tensor;
const TfjsOrthogonal = tf.initializers.orthogonal({}).constructor as { prototype: { apply: Apply } };
// tfjs's own apply, kept before installFastOrthogonal replaces it.
const tfjsApply = TfjsOrthogonal.prototype.apply;

before(async () => {
  await tf.setBackend('cpu');
  installFastOrthogonal();
});

/** max |M^T M - gain^2 I| over the smaller Gram matrix of a rows x cols matrix (its first maxVectors rows/columns). */
function orthogonalityError(values: ArrayLike<number>, rows: number, cols: number, gain = 1, maxVectors = Infinity): number {
  const tall = rows >= cols;
  const n = Math.min(tall ? cols : rows, maxVectors);
  const len = tall ? rows : cols;
  const at = (vec: number, i: number) => (tall ? values[i * cols + vec]! : values[vec * cols + i]!);
  let worst = 0;
  for (let p = 0; p < n; p++) {
    for (let q = p; q < n; q++) {
      let s = 0;
      for (let i = 0; i < len; i++) s += at(p, i) * at(q, i);
      worst = Math.max(worst, Math.abs(s - (p === q ? gain * gain : 0)));
    }
  }
  return worst;
}

for (const [shape, gain] of [[[64, 64], 1], [[300, 40], 1], [[90, 60], 1], [[40, 300], 1], [[3, 4, 5], 1], [[128, 512], 1], [[50, 50], 2.5], [[20, 100], 0.5]] as Array<[number[], number]>) {
  test(`orthogonal ${JSON.stringify(shape)} gain ${gain}: rows or columns orthonormal (times gain)`, () => {
    const t = tf.initializers.orthogonal({ gain }).apply(shape);
    assert.deepEqual(t.shape, shape);
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const err = orthogonalityError(t.dataSync(), rows, shape.at(-1)!, gain);
    t.dispose();
    assert.ok(err < 1e-4 * gain * gain, `max |Q^T Q - gain^2 I| = ${err}`);
  });
}

test('the same matrix as tfjs\'s own Orthogonal for the same seed (tall, wide, square, both QR paths)', () => {
  for (const [shape, seed] of [[[12, 5], 3], [[5, 12], 4], [[9, 9], 5], [[30, 20], 6], [[4, 3, 6], 7]] as Array<[number[], number]>) {
    const init = tf.initializers.orthogonal({ seed, gain: 1.5 });
    const want = tfjsApply.call(init, shape).dataSync();
    const got = init.apply(shape).dataSync();
    const diff = Math.max(...Array.from(want, (v, i) => Math.abs(v - got[i]!)));
    assert.ok(diff < 1e-5, `${JSON.stringify(shape)}: differs by ${diff}`);
  }
});

test('signCorrectedQ: Householder and Cholesky paths agree, and R has a positive diagonal', () => {
  const m = 40;
  const n = 12;
  const a = Array.from({ length: m * n }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
  const q = signCorrectedQ(a, m, n); // m >= 2n: the Cholesky path
  const h = signCorrectedQ(a, m, n, 'householder');
  const diff = Math.max(...Array.from(q, (v, i) => Math.abs(v - h[i]!)));
  assert.ok(diff < 1e-12, `paths differ by ${diff}`);
  // R = Q^T A must be upper triangular with a positive diagonal.
  for (let p = 0; p < n; p++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += q[p * m + i]! * a[i * n + j]!;
      if (p > j) assert.ok(Math.abs(s) < 1e-9, `R[${p}][${j}] = ${s}`);
      if (p === j) assert.ok(s > 0, `R[${p}][${p}] = ${s}`);
    }
  }
});

test('LSTM, GRU and SimpleRNN use it by default, the spec\'s "orthogonal" too', () => {
  const rnnKernel = (layer: tf.layers.Layer) => layer.getWeights()[1]!;
  for (const layer of [tf.layers.lstm({ units: 8 }), tf.layers.gru({ units: 8 }), tf.layers.simpleRNN({ units: 8 })]) {
    const init = (layer as unknown as { cell: { recurrentInitializer: object } }).cell.recurrentInitializer;
    assert.equal(init.constructor.name, 'FastOrthogonal');
    tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [3, 4] }), layer] });
    const w = rnnKernel(layer);
    assert.ok(orthogonalityError(w.dataSync(), w.shape[0]!, w.shape[1]!) < 1e-5);
  }
  const model = buildModel({ type: 'sequential', layers: [{ type: 'Dense', units: 30, input_shape: [10], kernel_initializer: { class_name: 'Orthogonal', config: { gain: 2 } } }] });
  const k = model.layers[0]!.getWeights()[0]!;
  assert.ok(orthogonalityError(k.dataSync(), 10, 30, 2) < 1e-4);
  model.dispose();
});

test('seeded builds stay repeatable', () => {
  const weights = (seed: number) => withSeededRandom(seed, () => {
    const m = tf.sequential({ layers: [tf.layers.lstm({ units: 16, inputShape: [4, 3] })] });
    const w = Array.from(m.getWeights()[1]!.dataSync());
    m.dispose();
    return w;
  });
  assert.deepEqual(weights(1), weights(1));
  assert.notDeepEqual(weights(1), weights(2));
});

test('a two-layer LSTM(512) on [20, 32] builds fast', () => {
  const t0 = performance.now();
  const model = tf.sequential({ layers: [
    tf.layers.lstm({ units: 512, returnSequences: true, inputShape: [20, 32] }),
    tf.layers.lstm({ units: 512 }),
  ] });
  const seconds = (performance.now() - t0) / 1000;
  console.log(`LSTM(512) x 2 built in ${seconds.toFixed(2)} s`);
  const w = model.layers[1]!.getWeights()[1]!;
  assert.ok(orthogonalityError(w.dataSync(), 512, 2048, 1, 48) < 1e-4);
  model.dispose();
  assert.ok(seconds < 5, `took ${seconds} s`);
});
