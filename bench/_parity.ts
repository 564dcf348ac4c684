import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.ts';
import { makeData, MODELS, COMPILE, CLASSES } from './lib.ts';
import { withSeededRandom } from '../src/engine/seeded-random.ts';
import { buildModel } from '../src/model-spec/build-model.ts';
import { resolveCompile } from '../src/model-spec/compile.ts';
import { fit } from '../workers/train-loop.ts';
await initBackend('wasm');
const n = 2048;
const { x, y } = makeData('mlp', n);
const compiled = resolveCompile(COMPILE, [{ name: 'out', shape: [CLASSES] }]);
const res: any[] = [];
for (const fast of [true, false]) {
  const model = withSeededRandom(1, () => buildModel(MODELS.mlp.spec));
  const t0 = performance.now();
  const r = await fit(model, compiled, ['out'], x, y, { epochs: 3, batchSize: 32, seed: 1, validationSplit: 0.1, denseFastPath: fast });
  const dt = performance.now() - t0;
  console.log(fast, r.engine, (3 * n * 0.9 / dt * 1000).toFixed(0), 'samples/s', JSON.stringify(r.history));
  res.push(model.getWeights().map(w => w.dataSync()));
}
let worst = 0;
res[0].forEach((w: Float32Array, i: number) => w.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - res[1][i][j]) / (Math.abs(res[1][i][j]) + 1e-3)); }));
console.log('worst rel weight diff', worst, 'tensors', tf.memory().numTensors);
