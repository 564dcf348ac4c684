/**
 * `node --import tsx bench/matmul-transposes.ts`: GFLOP/s of a 128x784x64 matMul on wasm with
 * each transpose combination, stock kernels first, then with registerWasmTrainingKernels(),
 * then the dense fast path's own products (src/engine/dense-kernels.ts: A B, A^T B, A B^T).
 * (A Dense layer's backward pass runs the transposed cases.)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../src/engine/wasm-training-kernels.ts';
import { loadDenseKernels } from '../src/engine/dense-kernels.ts';

const [M, K, N] = [128, 784, 64];
await tf.setBackend('wasm');

function gflops(transposeA: boolean, transposeB: boolean, fused: boolean): number {
  const a = tf.randomNormal(transposeA ? [K, M] : [M, K]);
  const b = tf.randomNormal(transposeB ? [N, K] : [K, N]);
  const bias = tf.zeros([N]);
  const once = () => (fused ? tf.fused.matMul({ a, b, transposeA, transposeB, bias, activation: 'relu' }) : tf.matMul(a, b, transposeA, transposeB)).dispose();
  for (let i = 0; i < 5; i++) once();
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 500) {
    once();
    runs++;
  }
  const seconds = (performance.now() - t0) / 1000;
  tf.dispose([a, b, bias]);
  return (2 * M * K * N * runs) / seconds / 1e9;
}

const cases: Array<[string, boolean, boolean]> = [['A B', false, false], ['A^T B', true, false], ['A B^T', false, true], ['A^T B^T', true, true]];
const rows: Record<string, Record<string, number>> = {};
for (const [stage, setup] of [['stock', () => {}], ['ours', registerWasmTrainingKernels]] as const) {
  setup();
  for (const fused of [false, true]) {
    for (const [name, ta, tb] of cases) {
      const key = `${fused ? 'fused ' : ''}${name}`;
      (rows[key] ??= {})[stage] = Math.round(gflops(ta, tb, fused) * 100) / 100;
    }
  }
}
// The dense kernels on their own memory, operands in the layout each product reads.
const k = loadDenseKernels();
if (k) {
  k.memory.grow(Math.ceil((4 * 3 * M * K * 2) / 65536));
  const base = Math.ceil(k.heapBase() / 16) * 16;
  const [a, b, c] = [base, base + 4 * M * K * 2, base + 4 * M * K * 4];
  new Float32Array(k.memory.buffer, base, 3 * M * K * 2).forEach((_, i, f) => { f[i] = Math.sin(i); });
  const products: Record<string, () => void> = {
    'A B': () => k.gemmNN(a, b, c, M, K, N, 0),
    'A^T B': () => k.gemmTN(a, b, c, M, K, N, 0),
    'A B^T': () => k.gemmNT(a, b, c, M, N, K),
  };
  for (const [name, once] of Object.entries(products)) {
    let runs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 500) {
      once();
      runs++;
    }
    rows[name]!['dense kernels'] = Math.round(((2 * M * K * N * runs) / ((performance.now() - t0) / 1000) / 1e9) * 100) / 100;
  }
}
console.log(`matMul ${M}x${K}x${N} on wasm, GFLOP/s`);
console.table(rows);
