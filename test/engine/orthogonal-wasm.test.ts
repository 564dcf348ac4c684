// The fast Orthogonal initializer's device path (wasm: the two big products as tf.matMul,
// float32): orthogonal to float32 level, the same matrix as the float64 path for the same seed,
// and a two-layer LSTM(512) built in well under a second (logged; asserted loosely, the machine
// may be shared).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { installFastOrthogonal, signCorrectedQ } from '../../src/engine/fast-orthogonal.ts';
import { registerWasmTrainingKernels } from '../../src/engine/wasm-training-kernels.ts';

before(async () => {
  createRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');
  assert.ok(await tf.setBackend('wasm'));
  registerWasmTrainingKernels();
  installFastOrthogonal();
});
after(async () => {
  await tf.setBackend('cpu');
});

/** max |Q^T Q - I| over all column pairs of a tall row-major rows x cols matrix. */
function orthogonalityError(q: ArrayLike<number>, rows: number, cols: number): number {
  const col = Array.from({ length: cols }, (_, j) => Float64Array.from({ length: rows }, (_, i) => q[i * cols + j]!));
  let worst = 0;
  for (let p = 0; p < cols; p++) {
    for (let r = p; r < cols; r++) {
      let s = 0;
      const a = col[p]!;
      const b = col[r]!;
      for (let i = 0; i < rows; i++) s += a[i]! * b[i]!;
      worst = Math.max(worst, Math.abs(s - (p === r ? 1 : 0)));
    }
  }
  return worst;
}

test('tall and wide on wasm: orthogonal to ~1e-6, and the float64 path\'s matrix for the same seed', () => {
  for (const shape of [[1024, 256], [256, 1024], [512, 128]]) {
    const init = tf.initializers.orthogonal({ seed: 11, gain: 1 });
    const t = init.apply(shape);
    const values = t.dataSync();
    t.dispose();
    const [rows, cols] = shape as [number, number];
    const tall = rows >= cols;
    const m = Math.max(rows, cols);
    const n = Math.min(rows, cols);
    // As tall m x n, row-major.
    const q = tall ? values : Float32Array.from({ length: m * n }, (_, i) => values[(i % n) * cols + Math.floor(i / n)]!);
    const err = orthogonalityError(q, m, n);
    assert.ok(err < 1e-5, `${JSON.stringify(shape)}: max |Q^T Q - I| = ${err}`);
    // The float64 path on the same draw.
    const gauss = tf.randomNormal([m, n], 0, 1, 'float32', 11);
    const ref = signCorrectedQ(gauss.dataSync(), m, n);
    gauss.dispose();
    let diff = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) diff = Math.max(diff, Math.abs(ref[j * m + i]! - q[i * n + j]!));
    assert.ok(diff < 1e-4, `${JSON.stringify(shape)}: differs from the float64 path by ${diff}`);
  }
});

test('a two-layer LSTM(512) builds fast on wasm', () => {
  const build = () => {
    const t0 = performance.now();
    const model = tf.sequential({ layers: [
      tf.layers.lstm({ units: 512, returnSequences: true, inputShape: [20, 64] }),
      tf.layers.lstm({ units: 512 }),
    ] });
    const seconds = (performance.now() - t0) / 1000;
    model.dispose();
    return seconds;
  };
  build(); // first: wasm kernels warm
  const seconds = Math.min(build(), build());
  console.log(`LSTM(512) x 2 built on wasm in ${seconds.toFixed(2)} s`);
  assert.ok(seconds < 3, `took ${seconds} s`);
});
