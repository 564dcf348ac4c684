// Gradient parity: every layer type trains on wasm with our kernels, and its gradients (weights
// and input) match the pure-JS cpu backend's within 1e-4 relative error. Plus no leaks, and the
// kernel-level compositions on awkward shapes (strides, dilations, 'same' padding, multipliers).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from '../../src/engine/wasm-training-kernels.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';

const L = tf.layers;

before(async () => {
  createRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');
  assert.ok(await tf.setBackend('wasm'));
  registerWasmTrainingKernels();
});
after(async () => {
  await tf.setBackend('cpu');
});

/** Relative error by norms: ||a - b|| / max(||b||, 1e-12). */
function relErr(a: Float32Array | number[], b: Float32Array | number[]): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i]! - b[i]!) ** 2;
    n += b[i]! ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12);
}

function randomData(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

interface Case {
  /** Per-sample input shape; 'ids' feeds integer ids in [0, 10) of length 5. */
  input: number[] | 'ids';
  layers: () => tf.layers.Layer[];
  /** Samples per batch (default 3). */
  batch?: number;
}

const CASES: Record<string, Case> = {
  Dense: { input: [6], layers: () => [L.dense({ units: 4, activation: 'relu' })] },
  'Conv1D stride 2 same': { input: [11, 3], layers: () => [L.conv1d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' })] },
  'Conv2D stride 2 same': { input: [7, 7, 2], layers: () => [L.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' })] },
  'Conv2D stride 3 valid (unused rows)': { input: [9, 8, 2], layers: () => [L.conv2d({ filters: 3, kernelSize: [2, 3], strides: 3 })] },
  'Conv2D 5x5 same': { input: [8, 8, 3], layers: () => [L.conv2d({ filters: 4, kernelSize: 5, padding: 'same', activation: 'relu' })] },
  'Conv2DTranspose stride 2': { input: [4, 5, 2], layers: () => [L.conv2dTranspose({ filters: 3, kernelSize: 3, strides: 2, padding: 'same' })] },
  'Conv2DTranspose valid': { input: [4, 4, 2], layers: () => [L.conv2dTranspose({ filters: 2, kernelSize: 3 })] },
  SeparableConv2D: { input: [7, 7, 2], layers: () => [L.separableConv2d({ filters: 3, kernelSize: 3, depthMultiplier: 2, padding: 'same' })] },
  'SeparableConv2D stride 2': { input: [8, 8, 3], layers: () => [L.separableConv2d({ filters: 4, kernelSize: 3, strides: 2 })] },
  'DepthwiseConv2D stride 2 x2': { input: [7, 7, 3], layers: () => [L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same' })] },
  'DepthwiseConv2D valid': { input: [6, 7, 2], layers: () => [L.depthwiseConv2d({ kernelSize: [3, 2] })] },
  'DepthwiseConv2D dilated': { input: [9, 9, 2], layers: () => [L.depthwiseConv2d({ kernelSize: 3, dilationRate: 2, depthMultiplier: 3 })] },
  MaxPooling1D: { input: [8, 3], layers: () => [L.maxPooling1d({ poolSize: 2 })] },
  AveragePooling1D: { input: [9, 3], layers: () => [L.averagePooling1d({ poolSize: 3, strides: 2, padding: 'same' })] },
  MaxPooling2D: { input: [6, 6, 2], layers: () => [L.maxPooling2d({ poolSize: 2 })] },
  AveragePooling2D: { input: [7, 7, 2], layers: () => [L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' })] },
  MaxPooling3D: { input: [4, 4, 4, 2], layers: () => [L.maxPooling3d({ poolSize: 2 })] },
  AveragePooling3D: { input: [4, 4, 4, 2], layers: () => [L.averagePooling3d({ poolSize: 2 })] },
  GlobalMaxPooling2D: { input: [4, 4, 3], layers: () => [L.globalMaxPooling2d({})] },
  GlobalAveragePooling1D: { input: [5, 3], layers: () => [L.globalAveragePooling1d({})] },
  // One sample: the cpu backend's ResizeNearestNeighborGrad ignores the batch (see the test below).
  'UpSampling2D nearest': { input: [3, 3, 2], layers: () => [L.upSampling2d({ size: [2, 2] })], batch: 1 },
  'UpSampling2D bilinear': { input: [3, 3, 2], layers: () => [L.upSampling2d({ size: [2, 3], interpolation: 'bilinear' })] },
  Cropping2D: { input: [6, 6, 2], layers: () => [L.cropping2D({ cropping: [[1, 0], [0, 2]] })] },
  ZeroPadding2D: { input: [4, 4, 2], layers: () => [L.zeroPadding2d({ padding: [[1, 2], [0, 1]] })] },
  Conv3D: { input: [4, 4, 4, 2], layers: () => [L.conv3d({ filters: 2, kernelSize: 2 })] },
  Embedding: { input: 'ids', layers: () => [L.embedding({ inputDim: 10, outputDim: 4 })] },
  LSTM: { input: [5, 3], layers: () => [L.lstm({ units: 4, returnSequences: true })] },
  GRU: { input: [5, 3], layers: () => [L.gru({ units: 4 })] },
  SimpleRNN: { input: [5, 3], layers: () => [L.simpleRNN({ units: 4 })] },
  'Bidirectional LSTM': { input: [5, 3], layers: () => [L.bidirectional({ layer: L.lstm({ units: 3 }) as never })] },
  'Embedding + LSTM': { input: 'ids', layers: () => [L.embedding({ inputDim: 10, outputDim: 4 }), L.lstm({ units: 4 })] },
  BatchNormalization: { input: [6], layers: () => [L.batchNormalization({})] },
  // No conv bias: batch normalisation makes its gradient exactly 0 (float noise on both backends).
  'BatchNormalization conv': { input: [4, 4, 3], layers: () => [L.conv2d({ filters: 3, kernelSize: 2, useBias: false }), L.batchNormalization({})] },
  LayerNormalization: { input: [6], layers: () => [L.layerNormalization({})] },
  PReLU: { input: [6], layers: () => [L.prelu({})] },
  'TimeDistributed Dense': { input: [5, 3], layers: () => [L.timeDistributed({ layer: L.dense({ units: 2 }) })] },
  'CNN stack': {
    input: [10, 10, 1],
    layers: () => [
      L.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }),
      L.maxPooling2d({ poolSize: 2 }),
      L.depthwiseConv2d({ kernelSize: 3, padding: 'same' }),
      L.conv2d({ filters: 3, kernelSize: 2, strides: 2 }),
    ],
  },
};

const BATCH = 3;
const batchOf = (c: Case) => c.batch ?? BATCH;

/** The model: the case's layers, flattened if need be, then a Dense(2) head. */
function build(c: Case): tf.Sequential {
  const layers = c.layers();
  const inputShape = c.input === 'ids' ? [5] : c.input;
  const probe = tf.sequential({ layers: [L.inputLayer({ inputShape }), ...layers] });
  const rank = probe.outputs[0]!.shape.length;
  const head = rank > 2 ? [L.flatten(), L.dense({ units: 2 })] : [L.dense({ units: 2 })];
  return tf.sequential({ layers: [L.inputLayer({ inputShape }), ...layers, ...head] });
}

function inputData(c: Case): { data: Float32Array; shape: number[] } {
  if (c.input === 'ids') {
    const r = mulberry32(7);
    return { data: Float32Array.from({ length: batchOf(c) * 5 }, () => Math.floor(r() * 10)), shape: [batchOf(c), 5] };
  }
  const shape = [batchOf(c), ...c.input];
  return { data: randomData(shape.reduce((a, b) => a * b, 1), 11), shape };
}

/** Gradients of a fixed random projection of the output, by weight name, plus the input's ('x'). */
function gradients(model: tf.Sequential, c: Case, weights: Float32Array[] | null): { weights: Float32Array[]; grads: Map<string, Float32Array> } {
  if (weights) model.setWeights(weights.map((w, i) => tf.tensor(w, model.getWeights()[i]!.shape)));
  const own = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const { data, shape } = inputData(c);
  const grads = new Map<string, Float32Array>();
  tf.tidy(() => {
    const x = c.input === 'ids' ? tf.tensor(data, shape) : tf.variable(tf.tensor(data, shape), true, `x_${Math.random()}`);
    const outShape = model.outputs[0]!.shape.slice(1) as number[];
    const proj = tf.tensor(randomData(batchOf(c) * outShape.reduce((a, b) => a * b, 1), 5), [batchOf(c), ...outShape]);
    const { grads: g } = tf.variableGrads(() => (model.apply(x, { training: true }) as tf.Tensor).mul(proj).sum() as tf.Scalar);
    model.trainableWeights.forEach((w, i) => grads.set(`${i}:${w.name.replace(/\d+/g, '')}`, g[(w.read() as tf.Variable).name]!.dataSync() as Float32Array));
    if (x instanceof tf.Variable) {
      grads.set('x', g[x.name]!.dataSync() as Float32Array);
      x.dispose();
    }
    Object.values(g).forEach((t) => t.dispose());
  });
  return { weights: own, grads };
}

for (const [name, c] of Object.entries(CASES)) {
  test(`gradients on wasm match cpu: ${name}`, async () => {
    await tf.setBackend('cpu');
    const cpuModel = build(c);
    const ref = gradients(cpuModel, c, null);
    cpuModel.dispose();
    await tf.setBackend('wasm');
    const wasmModel = build(c);
    const got = gradients(wasmModel, c, ref.weights);
    wasmModel.dispose();
    assert.deepEqual([...got.grads.keys()], [...ref.grads.keys()]);
    for (const [key, g] of ref.grads) {
      const err = relErr(got.grads.get(key)!, g);
      const norm = Math.hypot(...g);
      assert.ok(err < 1e-4, `${name}: gradient of ${key} (norm ${norm.toExponential(2)}) differs by ${err.toExponential(2)}`);
    }
  });
}

test('UpSampling2D nearest on a batch: each input pixel gets the sum of its block (the cpu backend gets this wrong)', async () => {
  await tf.setBackend('wasm');
  const dy = tf.range(0, 2 * 4 * 4).reshape([2, 4, 4, 1]);
  const got = tf.tidy(() => tf.grad((x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [4, 4]).mul(dy).sum())(tf.zeros([2, 2, 2, 1])).dataSync());
  dy.dispose();
  // Block sums of 0..15 and 16..31 in 2x2 blocks.
  assert.deepEqual(Array.from(got), [10, 18, 42, 50, 74, 82, 106, 114]);
});

test('max pool gradients go to the first maximum even when a window is all negative (stock wasm loses them)', async () => {
  await tf.setBackend('wasm');
  const x = tf.tensor4d([-3, -1, 5, 2, -2, -4, 2, 5, 1, 1, -9, -8, 1, 1, -7, -9], [1, 4, 4, 1]);
  const got = tf.tidy(() => tf.grad((v) => tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid').mul(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1])).sum())(x).dataSync());
  const x3 = tf.tensor5d([-5, -1, -2, -3, -4, -6, -7, -8], [1, 2, 2, 2, 1]);
  const got3 = tf.tidy(() => tf.grad((v) => tf.maxPool3d(v as tf.Tensor5D, 2, 2, 'valid').sum())(x3).dataSync());
  tf.dispose([x, x3]);
  assert.deepEqual(Array.from(got), [0, 1, 2, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 4, 0]);
  assert.deepEqual(Array.from(got3), [0, 1, 0, 0, 0, 0, 0, 0]);
});

test('a training step with our kernels leaks neither tensors nor wasm memory', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const model = tf.sequential({ layers: [
    L.embedding({ inputDim: 20, outputDim: 6, inputShape: [6] }),
    L.reshape({ targetShape: [6, 6, 1] }),
    L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }),
    L.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2 }),
    L.separableConv2d({ filters: 3, kernelSize: 1 }),
    L.flatten(),
    L.dense({ units: 3 }),
  ] });
  const opt = tf.train.adam(0.01);
  const x = tf.tensor2d(Array.from({ length: 24 }, (_, i) => i % 20), [4, 6]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
  const step = () => opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, false);
  step();
  step(); // optimizer slots exist now
  const tensors = tf.memory().numTensors;
  const ids = backend.numDataIds();
  for (let i = 0; i < 3; i++) step();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), ids);
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
});

test('matMul with transposes gives the stock results (2-D, batched, broadcast, fused)', async () => {
  await tf.setBackend('wasm');
  const a = tf.tensor(randomData(2 * 5 * 7, 1), [2, 5, 7]);
  const b = tf.tensor(randomData(2 * 7 * 4, 2), [2, 7, 4]);
  const b1 = tf.tensor(randomData(7 * 4, 3), [7, 4]);
  const bias = tf.tensor1d([1, -2, 3, 0.5]);
  const ref = async (f: () => tf.Tensor) => {
    await tf.setBackend('cpu');
    const r = f().dataSync() as Float32Array;
    await tf.setBackend('wasm');
    return r;
  };
  const checks: Array<[string, () => tf.Tensor]> = [
    ['A^T B', () => tf.matMul(a.transpose([0, 2, 1]), b, true, false)],
    ['A B^T', () => tf.matMul(a, b.transpose([0, 2, 1]), false, true)],
    ['A^T B^T', () => tf.matMul(a.transpose([0, 2, 1]), b.transpose([0, 2, 1]), true, true)],
    ['2-D A^T B^T', () => tf.matMul(a.reshape([10, 7]).transpose(), b1.transpose(), true, true)],
    ['broadcast A B^T', () => tf.matMul(a, b1.transpose(), false, true)],
    ['fused A^T B + bias, relu', () => tf.fused.matMul({ a: a.reshape([10, 7]).transpose(), b: b1, transposeA: true, bias, activation: 'relu' })],
    ['fused A B^T + bias', () => tf.fused.matMul({ a: a.reshape([10, 7]), b: b1.transpose(), transposeB: true, bias })],
  ];
  for (const [what, f] of checks) {
    const before = tf.memory().numTensors;
    const got = tf.tidy(() => f().dataSync() as Float32Array);
    assert.equal(tf.memory().numTensors, before, what);
    const want = await ref(() => tf.tidy(f));
    assert.ok(relErr(got, want) < 1e-6, `${what}: ${relErr(got, want)}`);
  }
  tf.dispose([a, b, b1, bias]);
});

test('a kernel the cpu backend has and wasm lacks runs through the fallback (Einsum)', async () => {
  await tf.setBackend('wasm');
  const got = tf.tidy(() => tf.einsum('ij,jk->ik', tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).arraySync());
  assert.deepEqual(got, [[17], [39]]);
});
