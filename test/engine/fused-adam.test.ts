// Adam's fused update on wasm (one kernel per variable, SIMD module on the backend's memory):
// bit for bit the numbers of tfjs's own update, slots and weights as tfjs names them, and no leaks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from '../../src/engine/wasm-training-kernels.ts';
import { ADAM_KERNEL } from '../../src/engine/wasm-fused-adam.ts';
import { adamModuleBytes, adamSimdFor } from '../../src/engine/wasm-simd-adam.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

before(async () => {
  createRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');
  assert.ok(await tf.setBackend('wasm'));
});
after(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('cpu');
});

const SHAPES = [[784, 64], [64], [7, 3], [5], [1], [3, 3, 2, 9]];

/** Runs `steps` Adam steps on fresh variables with fixed gradients; returns the final values and optimizer weights. */
async function run(steps: number, args: [number, number, number, number]): Promise<{ values: Float32Array[]; weights: Array<{ name: string; values: Float32Array }>; leaked: number }> {
  const random = mulberry32(7);
  const fill = (shape: number[], scale: number) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (random() - 0.5) * scale);
  const vars = SHAPES.map((shape, i) => tf.variable(tf.tensor(fill(shape, 1), shape), true, `w${i}_${Math.random()}`));
  const grads = SHAPES.map((shape, i) => tf.tensor(fill(shape, i === 1 ? 1e-6 : 2), shape));
  const optimizer = tf.train.adam(...args);
  const baseline = tf.memory().numTensors;
  for (let s = 0; s < steps; s++) {
    tf.tidy(() => optimizer.applyGradients(Object.fromEntries(vars.map((v, i) => [v.name, grads[i]!.mul(1 + s * 0.1)]))));
  }
  const slots = 2 * SHAPES.length; // m and v per variable, made on the first step
  const leaked = tf.memory().numTensors - baseline - slots;
  const values = vars.map((v) => v.dataSync() as Float32Array);
  const weights = await Promise.all((await optimizer.getWeights()).map(async (w) => ({ name: w.name.replace(/_0\.\d+/, ''), values: (await w.tensor.data()) as Float32Array })));
  optimizer.dispose();
  tf.dispose([...vars, ...grads]);
  return { values, weights, leaked };
}

test('the SIMD module validates, with and without shared memory', () => {
  assert.ok(WebAssembly.validate(adamModuleBytes(false)));
  assert.ok(WebAssembly.validate(adamModuleBytes(true)));
  const memory = (tf.backend() as unknown as BackendWasm & { wasm: { asm: { memory: WebAssembly.Memory } } }).wasm.asm.memory;
  assert.ok(adamSimdFor(memory), 'instantiated on the backend memory');
});

for (const args of [[0.001, 0.9, 0.999, 1e-7], [0.05, 0.5, 0.9, 1e-3]] as Array<[number, number, number, number]>) {
  test(`fused Adam ${JSON.stringify(args)}: bit for bit tfjs's update over 5 steps, same slot names, no leaks`, async () => {
    registerWasmTrainingKernels();
    assert.ok(tf.getKernel(ADAM_KERNEL, 'wasm'));
    const calls: number[] = [];
    const eng = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
    const runKernel = eng.runKernel;
    eng.runKernel = function (name: string, ...rest: unknown[]) {
      if (name === ADAM_KERNEL) calls.push(1);
      return runKernel.call(this, name, ...rest);
    };
    let fused;
    try {
      fused = await run(5, args);
    } finally {
      eng.runKernel = runKernel;
    }
    assert.equal(calls.length, 5 * SHAPES.length, 'one fused kernel per variable per step');
    unregisterWasmTrainingKernels();
    const stock = await run(5, args);
    registerWasmTrainingKernels();
    assert.equal(fused.leaked, 0);
    assert.equal(stock.leaked, 0);
    for (let i = 0; i < SHAPES.length; i++) {
      const diff = fused.values[i]!.findIndex((v, j) => !Object.is(v, stock.values[i]![j]!));
      assert.equal(diff, -1, `variable ${i} (${SHAPES[i]}) differs at ${diff}: ${fused.values[i]![diff]} vs ${stock.values[i]![diff]}`);
    }
    assert.deepEqual(fused.weights.map((w) => w.name), stock.weights.map((w) => w.name));
    fused.weights.forEach((w, i) => assert.deepEqual(w.values, stock.weights[i]!.values, w.name));
  });
}

test('a fused Adam resumes from setWeights as tfjs\'s does (checkpoints)', async () => {
  registerWasmTrainingKernels();
  const v = tf.variable(tf.tensor1d([1, -2, 3, 0.5, 7]), true, `r_${Math.random()}`);
  const g = tf.tensor1d([0.3, -0.1, 0.2, 0.9, -1]);
  const a = tf.train.adam(0.01);
  for (let i = 0; i < 3; i++) a.applyGradients([{ name: v.name, tensor: g }]);
  const saved = await a.getWeights();
  const b = tf.train.adam(0.01);
  await b.setWeights(saved.map((w) => ({ name: w.name, tensor: w.tensor.clone() })));
  const w = tf.variable(v.clone(), true, `s_${Math.random()}`);
  a.applyGradients([{ name: v.name, tensor: g }]);
  // b's slots are keyed by position: rename the gradient to w's variable.
  b.applyGradients([{ name: w.name, tensor: g }]);
  assert.deepEqual(Array.from(w.dataSync()), Array.from(v.dataSync()));
  a.dispose();
  b.dispose();
  tf.dispose([v, g, w]);
});
