/**
 * The dense fast path: training steps of a Dense chain (dense-plan.ts) computed in one
 * WebAssembly module of our own (dense-kernels.ts), with no tfjs kernel, tensor or tape per
 * step. For the small matrices of an MLP at batch 32 tfjs's per-kernel engine overhead, not
 * arithmetic, is most of a step; here a step is a dozen calls into wasm.
 *
 * The weights and the optimizer's state live in this module's memory while steps run, and go
 * back to the tfjs model and optimizer (release()) whenever anything else may look at them:
 * checkpoints, validation, callbacks, the end of the fit. The next step reads them back
 * (a callback may have changed them). The arithmetic is tfjs's: the same forward pass, Keras's
 * losses, and Adam / SGD / RMSprop op for op in float32; the order of summation in the matrix products
 * differs, and Adam's beta^t comes from the step count rather than a running product, so that a
 * resumed run repeats the uninterrupted one exactly (test/engine/dense-fast-path.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { getLearningRate } from '../model-spec/optimizers.ts';
import type { ArrayColumn } from '../model-spec/types.ts';
import { ACTIVATION_CODES, loadDenseKernels, type DenseKernels } from './dense-kernels.ts';
import type { DensePlan } from './dense-plan.ts';

/** Float32 buffers in the module's memory, as element offsets (byte offset / 4). */
interface Param {
  variable: tf.Variable;
  /** Index of the variable among the optimizer's slots (the trainable weights' order). */
  slot: number;
  size: number;
  w: number; g: number;
  /** The optimizer's state for this variable, one buffer per entry of SLOTS[optimizer]. */
  state: number[];
}

type Slot = { originalName: string; variable: tf.Variable };

/**
 * Each optimizer's per-variable state as tfjs keeps it: the list field on the optimizer and the
 * suffix of the slot's name (`<variable>/<suffix>`, what getWeights() and checkpoints carry).
 */
const SLOTS: Record<DensePlan['optimizer'], Array<{ field: string; suffix: string }>> = {
  adam: [{ field: 'accumulatedFirstMoment', suffix: 'm' }, { field: 'accumulatedSecondMoment', suffix: 'v' }],
  sgd: [],
  momentum: [{ field: 'accumulations', suffix: 'momentum' }],
  rmsprop: [{ field: 'accumulatedMeanSquares', suffix: 'rms' }, { field: 'accumulatedMoments', suffix: 'momentum' }],
};

interface LayerBuffers {
  inputs: number; units: number; act: number;
  kernel: Param; bias: Param | null;
  /** The layer's output (the logits for a softmax/sigmoid cross-entropy head) and its gradient. */
  out: number; grad: number;
  /** With a Dropout after the layer: its rate, the output after it (the next layer's input) and the factors it applied. */
  dropout: number; dropped: number; mask: number;
}

/** The fields of tfjs's optimizers the updates read (AdamOptimizer, MomentumOptimizer, RMSPropOptimizer). */
type OptimizerFields = {
  beta1: number; beta2: number; epsilon: number; accBeta1: tf.Variable; accBeta2: tf.Variable;
  momentum: number; useNesterov: boolean; decay: number;
} & Record<string, Array<Slot | undefined>>;

/** A Dropout layer's xorshift seed for one step: the fit's seed, the step count and the layer, mixed (never 0). */
function dropoutSeed(seed: number, step: number, layer: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35) ^ Math.imul(layer + 1, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) || 1;
}

/** Adam's beta^t as a float32 (tfjs keeps it as a running float32 product; this depends on t only). */
function accBeta(beta: number, t: number): number {
  return Math.fround(Math.pow(Math.fround(beta), t));
}

export class DenseTrainer {
  /** Sums over the epoch's steps of the log vector times the batch size, in key order (as the tfjs path's). */
  readonly sums: Float64Array;
  private readonly k: DenseKernels;
  private f32: Float32Array;
  private f64: Float64Array;
  private readonly layers: LayerBuffers[] = [];
  private readonly params: Param[] = [];
  private readonly x: number;
  private readonly y: number;
  private readonly probs: number;
  private readonly stats: number;
  /** Per-row loss weights of the batch (sample weight times class weight), or 0 when neither is given. */
  private readonly wts: number;
  private readonly features: number;
  private readonly targets: number;
  /** Where the live state is: in the tfjs model/optimizer, or here. */
  private owner: 'tfjs' | 'here' = 'tfjs';
  private iterations = 0;

  /**
   * @param varList the trainable variables in the optimizer's slot order.
   * @param width the log vector's length (loss, then the plan's metrics).
   * @param weights Keras's sample_weight (one value per row) and class_weight (a table by class,
   *   labels past its end taking the last entry), multiplied into each row's loss.
   * @param seed where Dropout's draws start: each step's come from (seed, step count, layer), so a
   *   resumed run draws what the uninterrupted one did.
   */
  constructor(private readonly plan: DensePlan, private readonly optimizer: tf.Optimizer, varList: tf.Variable[],
    batchSize: number, width: number, private readonly xs: ArrayColumn, private readonly ys: ArrayColumn,
    private readonly weights: { sample: ArrayColumn | null; classTable: number[] | null } = { sample: null, classTable: null },
    private readonly seed = 0) {
    const k = loadDenseKernels();
    if (!k) throw new Error('the dense kernels need WebAssembly SIMD');
    this.k = k;
    this.sums = new Float64Array(width);
    let top = k.heapBase();
    const alloc = (floats: number): number => {
      top = Math.ceil(top / 16) * 16;
      const at = top / 4;
      top += floats * 4;
      return at;
    };
    const param = (variable: tf.Variable): Param => {
      const size = variable.size;
      const p: Param = { variable, slot: varList.indexOf(variable), size, w: alloc(size), g: alloc(size), state: SLOTS[plan.optimizer].map(() => alloc(size)) };
      if (p.slot < 0) throw new Error(`variable ${variable.name} is not trainable`);
      this.params.push(p);
      return p;
    };
    const B = batchSize;
    this.features = plan.layers[0]!.inputs;
    const last = plan.layers[plan.layers.length - 1]!;
    this.targets = plan.loss === 'sparse_categorical_crossentropy' ? 1 : last.units;
    this.x = alloc(B * this.features);
    this.y = alloc(B * this.targets);
    this.probs = alloc(B * last.units);
    this.stats = alloc(6); // three float64
    this.wts = weights.sample || weights.classTable ? alloc(B) : 0;
    for (const l of plan.layers) {
      const head = l === last && plan.loss !== 'mean_squared_error';
      this.layers.push({
        inputs: l.inputs, units: l.units,
        act: head || l.activation === 'softmax' ? ACTIVATION_CODES.linear : ACTIVATION_CODES[l.activation],
        kernel: param(l.kernel), bias: l.bias ? param(l.bias) : null,
        out: alloc(B * l.units), grad: alloc(B * l.units),
        dropout: l.dropout, dropped: l.dropout > 0 ? alloc(B * l.units) : 0, mask: l.dropout > 0 ? alloc(B * l.units) : 0,
      });
    }
    const pages = Math.ceil(top / 65536) - k.memory.buffer.byteLength / 65536;
    if (pages > 0) k.memory.grow(pages);
    this.f32 = new Float32Array(k.memory.buffer);
    this.f64 = new Float64Array(k.memory.buffer);
  }

  /** Clears the epoch sums, or starts them from a checkpoint's. */
  resetSums(from?: number[] | null): void {
    this.sums.fill(0);
    if (from) this.sums.set(from.slice(0, this.sums.length));
  }

  /** One training step on rows order[start..end) of the columns. */
  step(order: Int32Array, start: number, end: number): void {
    if (this.owner === 'tfjs') this.pull();
    const { k, f32 } = this;
    const M = end - start;
    const F = this.features;
    const T = this.targets;
    const xd = this.xs.data;
    const yd = this.ys.data;
    for (let r = 0; r < M; r++) {
      const row = order[start + r]!;
      f32.set(xd.subarray(row * F, row * F + F), this.x + r * F);
      f32.set(yd.subarray(row * T, row * T + T), this.y + r * T);
    }
    if (this.wts) this.rowWeights(order, start, M);

    // Forward.
    let input = this.x;
    this.layers.forEach((l, i) => {
      k.gemmNN(input * 4, l.kernel.w * 4, l.out * 4, M, l.inputs, l.units, 0);
      k.biasActivation(l.out * 4, l.bias ? l.bias.w * 4 : 0, M, l.units, l.act);
      input = l.out;
      if (l.dropout > 0) {
        f32.copyWithin(l.dropped, l.out, l.out + M * l.units);
        k.dropout(l.dropped * 4, l.mask * 4, M * l.units, l.dropout, dropoutSeed(this.seed, this.iterations, i));
        input = l.dropped;
      }
    });

    // The loss, its sums and the gradient at the last layer.
    const head = this.layers[this.layers.length - 1]!;
    const st = this.stats / 2;
    this.f64.fill(0, st, st + 3);
    const N = head.units;
    switch (this.plan.loss) {
      case 'sparse_categorical_crossentropy':
      case 'categorical_crossentropy':
        k.softmaxCrossEntropy(head.out * 4, this.y * 4, this.probs * 4, head.grad * 4, M, N, this.plan.loss === 'sparse_categorical_crossentropy' ? 1 : 0, this.wts * 4, this.stats * 4);
        break;
      case 'binary_crossentropy':
        k.sigmoidCrossEntropy(head.out * 4, this.y * 4, this.probs * 4, head.grad * 4, M, N, this.wts * 4, this.stats * 4);
        break;
      case 'mean_squared_error':
        k.meanSquaredError(head.out * 4, this.y * 4, head.grad * 4, M, N, this.wts * 4, this.stats * 4);
        k.activationGrad(head.grad * 4, head.out * 4, M * N, head.act);
        break;
    }

    // Backward: each layer's weight gradients, then the gradient at its input.
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const l = this.layers[i]!;
      const prev = i > 0 ? this.layers[i - 1]! : null;
      k.gemmTN((prev ? (prev.dropout > 0 ? prev.dropped : prev.out) : this.x) * 4, l.grad * 4, l.kernel.g * 4, M, l.inputs, l.units, 0);
      if (l.bias) k.columnSums(l.grad * 4, l.bias.g * 4, M, l.units);
      if (prev) {
        k.gemmNT(l.grad * 4, l.kernel.w * 4, prev.grad * 4, M, l.units, l.inputs);
        if (prev.dropout > 0) k.multiply(prev.grad * 4, prev.mask * 4, M * l.inputs);
        k.activationGrad(prev.grad * 4, prev.out * 4, M * l.inputs, prev.act);
      }
    }

    this.update();
    // The loss key logs the weighted loss; metrics are unweighted (Keras's plain metrics).
    const [weighted, plain, metric] = [this.f64[st]!, this.f64[st + 1]!, this.f64[st + 2]!];
    this.sums[0]! += weighted;
    this.plan.metrics.forEach((which, i) => {
      this.sums[1 + i]! += which === 'loss' ? plain : metric;
    });
  }

  /** The batch's row weights: sample weight times the class weight of the row's class (its label, or its one-hot argmax). */
  private rowWeights(order: Int32Array, start: number, M: number): void {
    const { sample, classTable } = this.weights;
    const T = this.targets;
    const yd = this.ys.data;
    for (let r = 0; r < M; r++) {
      const row = order[start + r]!;
      let w = sample ? sample.data[row]! : 1;
      if (classTable) {
        let cls = 0;
        if (T > 1) {
          for (let j = 1; j < T; j++) if (yd[row * T + j]! > yd[row * T + cls]!) cls = j;
        } else {
          cls = Math.trunc(yd[row]!) || 0; // a cast to int32, as tfjs makes it
        }
        w *= classTable[Math.min(classTable.length - 1, Math.max(0, cls))]!;
      }
      this.f32[this.wts + r] = w;
    }
  }

  /** Writes the weights and the optimizer's state back to tfjs (when they are here). */
  release(): void {
    if (this.owner !== 'here') return;
    const f = this.f32;
    tf.tidy(() => {
      const o = this.optimizer as unknown as OptimizerFields;
      for (const p of this.params) {
        p.variable.assign(tf.tensor(f.slice(p.w, p.w + p.size), p.variable.shape));
        SLOTS[this.plan.optimizer].forEach(({ field, suffix }, k) => {
          const value = tf.tensor(f.slice(p.state[k]!, p.state[k]! + p.size), p.variable.shape);
          const list = o[field]!;
          if (list[p.slot]) list[p.slot]!.variable.assign(value);
          else list[p.slot] = { originalName: `${p.variable.name}/${suffix}`, variable: tf.keep(value.variable(false)) };
        });
      }
      if (this.plan.optimizer === 'adam') {
        // As tfjs's setWeights() sets them for this step count.
        o.accBeta1.assign(tf.scalar(accBeta(o.beta1, this.iterations + 1)));
        o.accBeta2.assign(tf.scalar(accBeta(o.beta2, this.iterations + 1)));
      }
    });
    (this.optimizer as unknown as { iterations_: number }).iterations_ = this.iterations;
    this.owner = 'tfjs';
  }

  /** Reads the weights and the optimizer's state from tfjs. */
  private pull(): void {
    // A grown memory detaches old views (nothing here grows it after the constructor, but be safe).
    if (this.f32.buffer !== this.k.memory.buffer) {
      this.f32 = new Float32Array(this.k.memory.buffer);
      this.f64 = new Float64Array(this.k.memory.buffer);
    }
    const f = this.f32;
    const o = this.optimizer as unknown as OptimizerFields;
    for (const p of this.params) {
      f.set(p.variable.dataSync() as Float32Array, p.w);
      // A slot tfjs has not made yet (no step taken) starts at zero, as tfjs makes every one of these.
      SLOTS[this.plan.optimizer].forEach(({ field }, k) => {
        const slot = o[field]![p.slot];
        if (slot) f.set(slot.variable.dataSync() as Float32Array, p.state[k]!);
        else f.fill(0, p.state[k]!, p.state[k]! + p.size);
      });
    }
    this.iterations = this.optimizer.iterations;
    this.owner = 'here';
  }

  /** The optimizer's update of every parameter, with tfjs's float32 scalars. */
  private update(): void {
    const f = Math.fround;
    const lr = getLearningRate(this.optimizer);
    const step = f(-lr);
    const o = this.optimizer as unknown as OptimizerFields;
    const k = this.k;
    if (this.plan.optimizer === 'adam') {
      const b1 = f(o.beta1);
      const b2 = f(o.beta2);
      const c1 = f(1 - o.beta1);
      const c2 = f(1 - o.beta2);
      // 1 - beta^t for this step t, from the step count alone: a run resumed from a checkpoint
      // (which keeps the count, not tfjs's running products) continues with the same numbers.
      const d1 = f(1 - accBeta(o.beta1, this.iterations + 1));
      const d2 = f(1 - accBeta(o.beta2, this.iterations + 1));
      const eps = f(o.epsilon);
      for (const p of this.params) k.adam(p.w * 4, p.state[0]! * 4, p.state[1]! * 4, p.g * 4, p.size, b1, c1, b2, c2, d1, d2, eps, step);
    } else if (this.plan.optimizer === 'momentum') {
      const m = f(o.momentum);
      for (const p of this.params) k.momentum(p.w * 4, p.state[0]! * 4, p.g * 4, p.size, m, step, o.useNesterov ? 1 : 0);
    } else if (this.plan.optimizer === 'rmsprop') {
      const [decay, c, mo, rate, eps] = [o.decay, 1 - o.decay, o.momentum, lr, o.epsilon].map(f) as [number, number, number, number, number];
      for (const p of this.params) k.rmsprop(p.w * 4, p.state[0]! * 4, p.state[1]! * 4, p.g * 4, p.size, decay, c, mo, rate, eps);
    } else {
      for (const p of this.params) k.sgd(p.w * 4, p.g * 4, p.size, step);
    }
    this.iterations++;
  }
}
