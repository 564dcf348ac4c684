// Run by wasm-threads.test.ts in a process of its own: starts wasm through initBackend with
// N threads (env N), checks a matmul against plain JS and trains a few Adam steps, prints one
// JSON line, and must then exit by itself (pthread workers must not keep the process alive).
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

const info = await initBackend('wasm', { threads: Number(process.env.N ?? 1) });
const random = mulberry32(3);
const [m, k, n] = [96, 200, 130];
const a = Float32Array.from({ length: m * k }, () => random() - 0.5);
const b = Float32Array.from({ length: k * n }, () => random() - 0.5);
const got = tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])).dataSync();
let maxDiff = 0;
for (let i = 0; i < m; i++) {
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
    maxDiff = Math.max(maxDiff, Math.abs(s - got[i * n + j]!));
  }
}
const model = tf.sequential({ layers: [tf.layers.dense({ units: 32, activation: 'relu', inputShape: [20] }), tf.layers.dense({ units: 1 })] });
model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
const x = tf.tensor2d(Float32Array.from({ length: 256 * 20 }, () => random()), [256, 20]);
const y = x.sum(1, true);
const history = await model.fit(x, y, { epochs: 5, batchSize: 32, verbose: 0 });
const losses = history.history.loss as number[];
console.log(JSON.stringify({ info, maxDiff, first: losses[0], last: losses.at(-1) }));
