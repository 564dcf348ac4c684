/**
 * Adam's update in one wasm kernel per variable. tfjs's AdamOptimizer.applyGradients runs 13
 * elementwise kernels per variable (plus scalar uploads): on wasm, for a small model, each costs
 * far more in engine overhead (~10-15 us) than in arithmetic, and they are a third of a Dense
 * model's training step. Here one pass over wasm memory computes the new value, m and v.
 *
 * The arithmetic is tfjs's, op for op, each result rounded to float32 (Math.fround) as the wasm
 * kernels round it: the same numbers as the stock update, bit for bit (test/engine/fused-adam).
 * Only on wasm with float32 variables; anything else takes tfjs's own code.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Info, KernelArgs } from './wasm-kernel-utils.ts';
import { adamSimdFor } from './wasm-simd-adam.ts';

export const ADAM_KERNEL = 'KtsAdamUpdate';

/** Inputs: value, m, v, gradient (same shape), accBeta1, accBeta2 (scalars). Outputs: value, m, v. */
export function adamUpdate({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { value, m, v, gradient, accBeta1, accBeta2 } = inputs as Record<string, Info>;
  const wasm = backend as BackendWasm;
  const outValue = wasm.makeOutput(value!.shape, 'float32');
  const outM = wasm.makeOutput(value!.shape, 'float32');
  const outV = wasm.makeOutput(value!.shape, 'float32');
  // Views after every makeOutput: an allocation can grow (and detach) the wasm heap.
  const w = wasm.typedArrayFromHeap(value!) as Float32Array;
  const mm = wasm.typedArrayFromHeap(m!) as Float32Array;
  const vv = wasm.typedArrayFromHeap(v!) as Float32Array;
  const g = wasm.typedArrayFromHeap(gradient!) as Float32Array;
  const w2 = wasm.typedArrayFromHeap(outValue) as Float32Array;
  const m2 = wasm.typedArrayFromHeap(outM) as Float32Array;
  const v2 = wasm.typedArrayFromHeap(outV) as Float32Array;
  const f = Math.fround;
  const { beta1, beta2, epsilon, learningRate } = attrs as { beta1: number; beta2: number; epsilon: number; learningRate: number };
  // The scalars as tfjs makes them: float32 tensors of the JS numbers.
  const b1 = f(beta1);
  const c1 = f(1 - beta1);
  const b2 = f(beta2);
  const c2 = f(1 - beta2);
  const eps = f(epsilon);
  const step = f(-learningRate);
  // sub(1, accBeta): float32.
  const d1 = f(1 - (wasm.typedArrayFromHeap(accBeta1!) as Float32Array)[0]!);
  const d2 = f(1 - (wasm.typedArrayFromHeap(accBeta2!) as Float32Array)[0]!);
  // Four at a time in our SIMD module, on the backend's memory; the last n % 4 (or all, without it) here.
  const simd = adamSimdFor((wasm as unknown as { wasm: { asm?: { memory?: WebAssembly.Memory } } }).wasm.asm?.memory);
  let from = 0;
  if (simd) {
    from = w.length - (w.length % 4);
    simd(w.byteOffset, mm.byteOffset, vv.byteOffset, g.byteOffset, w2.byteOffset, m2.byteOffset, v2.byteOffset, from * 4,
      b1, c1, b2, c2, d1, d2, eps, step);
  }
  for (let i = from; i < w.length; i++) {
    const gi = g[i]!;
    // newM = m * beta1 + g * (1 - beta1); newV = v * beta2 + g^2 * (1 - beta2)
    const nm = f(f(mm[i]! * b1) + f(gi * c1));
    const nv = f(f(vv[i]! * b2) + f(f(gi * gi) * c2));
    // value + (m^ / (sqrt(v^) + eps)) * -lr, with m^ = newM / (1 - accBeta1), v^ = newV / (1 - accBeta2)
    const bm = f(nm / d1);
    const bv = f(nv / d2);
    w2[i] = f(f(f(bm / f(f(Math.sqrt(bv)) + eps)) * step) + w[i]!);
    m2[i] = nm;
    v2[i] = nv;
  }
  return [outValue, outM, outV];
}

type Slot = { originalName: string; variable: tf.Variable };
type AdamFields = {
  learningRate: number; beta1: number; beta2: number; epsilon: number;
  accBeta1: tf.Variable; accBeta2: tf.Variable;
  accumulatedFirstMoment: Slot[]; accumulatedSecondMoment: Slot[];
  incrementIterations: () => void;
};
type Gradients = tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>;

let stockApply: ((this: tf.AdamOptimizer, g: Gradients) => void) | undefined;

/** Whether a variable's update can take the fused kernel. */
function fusable(...ts: Array<tf.Tensor | undefined>): boolean {
  return ts.every((t) => t !== undefined && t.dtype === 'float32');
}

function fusedApply(this: tf.AdamOptimizer, variableGradients: Gradients): void {
  if (tf.getBackend() !== 'wasm' || !tf.getKernel(ADAM_KERNEL, 'wasm')) return stockApply!.call(this, variableGradients);
  const self = this as unknown as AdamFields;
  const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
  tf.tidy(() => {
    const attrs = { beta1: self.beta1, beta2: self.beta2, epsilon: self.epsilon, learningRate: self.learningRate };
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!;
      // The slots as tfjs makes them (same names, so getWeights/setWeights and checkpoints are unchanged).
      self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
      if (gradient == null) return;
      const m = self.accumulatedFirstMoment[i]!.variable;
      const v = self.accumulatedSecondMoment[i]!.variable;
      if (!fusable(value, m, v, gradient)) {
        // Not float32: tfjs's arithmetic for this variable.
        const newM = tf.add(tf.mul(m, self.beta1), tf.mul(gradient, 1 - self.beta1));
        const newV = tf.add(tf.mul(v, self.beta2), tf.mul(tf.square(gradient), 1 - self.beta2));
        const bm = tf.div(newM, tf.sub(1, self.accBeta1));
        const bv = tf.div(newV, tf.sub(1, self.accBeta2));
        m.assign(newM);
        v.assign(newV);
        value.assign(tf.add(tf.mul(tf.div(bm, tf.add(tf.sqrt(bv), self.epsilon)), -self.learningRate), value));
        return;
      }
      const [newValue, newM, newV] = tf.engine().runKernel(ADAM_KERNEL,
        { value, m, v, gradient, accBeta1: self.accBeta1, accBeta2: self.accBeta2 } as unknown as tf.NamedTensorMap,
        attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      m.assign(newM!);
      v.assign(newV!);
      value.assign(newValue!);
    });
    self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
    self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
  });
  self.incrementIterations();
}

/**
 * Makes tfjs's AdamOptimizer (tf.train.adam) take the fused kernel on wasm (idempotent). The
 * kernel itself is registered with the other wasm kernels; without it, tfjs's own update runs.
 */
export function installFusedAdam(): void {
  if (stockApply) return;
  const proto = tf.AdamOptimizer.prototype as unknown as { applyGradients: typeof fusedApply };
  stockApply = proto.applyGradients;
  proto.applyGradients = fusedApply;
}
