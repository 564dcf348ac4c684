/**
 * Keras layers tfjs 4.22 lacks or gets wrong, written as tfjs layers and registered under their
 * Keras class names (replacing tfjs's own where there is one), so a saved model.json loads back:
 *  - GRU with reset_after=true (TF2 Keras's default; tfjs refuses it): KerasGRU / ResetAfterGRUCell;
 *  - Flatten on a 2-D input (Keras returns it unchanged; tfjs demands rank >= 3): KerasFlatten;
 *  - Normalization (adapted mean / variance as non-trainable weights, or constants);
 *  - MultiHeadAttention (Keras's weights and maths, query/value/key, optional causal mask).
 */
import * as tf from '@tensorflow/tfjs';

type Kwargs = Record<string, unknown>;
type LayerArgs = ConstructorParameters<typeof tf.layers.Layer>[0];
type Shape = Array<number | null>;

// tfjs does not export these classes from its bundle: take them from instances.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyCtor = new (args: any) => any;
const GRUBase = tf.layers.gru({ units: 1 }).constructor as AnyCtor;
const GRUCellBase = tf.layers.gruCell({ units: 1 }).constructor as AnyCtor;
const FlattenBase = tf.layers.flatten().constructor as AnyCtor;

interface CellInternals {
  units: number;
  useBias: boolean;
  dropout: number;
  recurrentDropout: number;
  kernel: tf.LayerVariable;
  recurrentKernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  kernelInitializer: unknown;
  recurrentInitializer: unknown;
  biasInitializer: unknown;
  kernelRegularizer: unknown;
  recurrentRegularizer: unknown;
  biasRegularizer: unknown;
  kernelConstraint: unknown;
  recurrentConstraint: unknown;
  biasConstraint: unknown;
  activation: { apply: (x: tf.Tensor) => tf.Tensor };
  recurrentActivation: { apply: (x: tf.Tensor) => tf.Tensor };
  dropoutMask: tf.Tensor | null;
  recurrentDropoutMask: tf.Tensor | null;
  built: boolean;
  addWeight: (...a: unknown[]) => tf.LayerVariable;
  getConfig: () => tf.serialization.ConfigDict;
}

/**
 * Keras's GRUCell with reset_after=True: bias of shape [2, 3 * units] (input and recurrent biases),
 * and the reset gate applied after the recurrent matrix product:
 *   z = σ(x Wz + bz + h Uz + b'z),  r = σ(x Wr + br + h Ur + b'r),
 *   hh = tanh(x Wh + bh + r * (h Uh + b'h)),  h' = z * h + (1 - z) * hh.
 */
export class ResetAfterGRUCell extends GRUCellBase {
  static className = 'ResetAfterGRUCell';
  readonly resetAfter = true;

  constructor(args: Kwargs) {
    super({ ...args, resetAfter: false });
  }

  build(inputShape: Shape | Shape[]): void {
    const self = this as unknown as CellInternals;
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const inputDim = shape[shape.length - 1] as number;
    const u = self.units;
    self.kernel = self.addWeight('kernel', [inputDim, 3 * u], null, self.kernelInitializer, self.kernelRegularizer, true, self.kernelConstraint);
    self.recurrentKernel = self.addWeight('recurrent_kernel', [u, 3 * u], null, self.recurrentInitializer, self.recurrentRegularizer, true, self.recurrentConstraint);
    self.bias = self.useBias ? self.addWeight('bias', [2, 3 * u], null, self.biasInitializer, self.biasRegularizer, true, self.biasConstraint) : null;
    self.built = true;
  }

  call(inputs: tf.Tensor[], kwargs: Kwargs): tf.Tensor[] {
    const self = this as unknown as CellInternals;
    return tf.tidy(() => {
      const training = Boolean(kwargs?.training);
      let x = inputs[0];
      const hPrev = inputs[1];
      if (self.dropout > 0 && self.dropout < 1 && self.dropoutMask == null) {
        self.dropoutMask = tf.keep(training ? tf.dropout(tf.onesLike(x), self.dropout) : tf.onesLike(x));
      }
      if (self.recurrentDropout > 0 && self.recurrentDropout < 1 && self.recurrentDropoutMask == null) {
        self.recurrentDropoutMask = tf.keep(training ? tf.dropout(tf.onesLike(hPrev), self.recurrentDropout) : tf.onesLike(hPrev));
      }
      if (self.dropoutMask) x = tf.mul(x, self.dropoutMask);
      const h = self.recurrentDropoutMask ? tf.mul(hPrev, self.recurrentDropoutMask) : hPrev;
      let mx = tf.matMul(x, self.kernel.read());
      let mh = tf.matMul(h, self.recurrentKernel.read());
      if (self.bias) {
        const [bIn, bRec] = tf.unstack(self.bias.read(), 0);
        mx = tf.add(mx, bIn);
        mh = tf.add(mh, bRec);
      }
      const [xz, xr, xh] = tf.split(mx, 3, -1);
      const [hz, hr, hh] = tf.split(mh, 3, -1);
      const z = self.recurrentActivation.apply(tf.add(xz, hz));
      const r = self.recurrentActivation.apply(tf.add(xr, hr));
      const cand = self.activation.apply(tf.add(xh, tf.mul(r, hh)));
      const out = tf.add(tf.mul(z, hPrev), tf.mul(tf.sub(1, z), cand));
      return [out, out];
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...(GRUCellBase.prototype.getConfig.call(this) as tf.serialization.ConfigDict), resetAfter: true };
  }
}
tf.serialization.registerClass(ResetAfterGRUCell as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

/** Keras's GRU: reset_after true or false; registered as "GRU" in place of tfjs's. */
export class KerasGRU extends GRUBase {
  static className = 'GRU';
  readonly resetAfter: boolean;

  constructor(args: Kwargs) {
    const resetAfter = Boolean(args.resetAfter);
    super({ ...args, resetAfter: false });
    this.resetAfter = resetAfter;
    if (resetAfter) (this as unknown as { cell: unknown }).cell = new ResetAfterGRUCell({ ...args, name: undefined });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...(GRUBase.prototype.getConfig.call(this) as tf.serialization.ConfigDict), resetAfter: this.resetAfter };
  }

  static fromConfig(cls: AnyCtor, config: Kwargs) {
    return new cls(config);
  }
}
tf.serialization.registerClass(KerasGRU as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

/** Keras's Flatten: a 2-D input (batch, n) is returned as it is; tfjs refuses rank < 3. */
export class KerasFlatten extends FlattenBase {
  static className = 'Flatten';
  constructor(args: Kwargs = {}) {
    super(args);
    (this as unknown as { inputSpec: unknown }).inputSpec = [{ minNDim: 2 }];
  }
}
tf.serialization.registerClass(KerasFlatten as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

// ---------------------------------------------------------------------------------------------

export interface NormalizationArgs {
  name?: string;
  trainable?: boolean;
  dtype?: 'float32';
  inputShape?: Shape;
  batchInputShape?: Shape;
  batchSize?: number;
  axis?: number | number[] | null;
  mean?: number | number[] | null;
  variance?: number | number[] | null;
  invert?: boolean;
  /** Keras's layer.adapt(): the worker sets mean and variance from the training data at fit time. */
  adapt?: boolean;
}

const EPSILON = 1e-7;

/**
 * Keras's Normalization: (x - mean) / max(sqrt(variance), 1e-7) along `axis` (-1: per feature).
 * Without mean/variance it keeps them as non-trainable weights (mean, variance and count: 2d+1
 * parameters, as Keras counts them), to be set by importing adapted weights; with them given
 * they are constants (no parameters).
 */
export class Normalization extends tf.layers.Layer {
  static className = 'Normalization';
  readonly axis: number[];
  readonly meanValue: number | number[] | null;
  readonly varianceValue: number | number[] | null;
  readonly invert: boolean;
  readonly adapt: boolean;
  private meanW: tf.LayerVariable | null = null;
  private varW: tf.LayerVariable | null = null;

  constructor(args: NormalizationArgs = {}) {
    super(args as LayerArgs);
    const axis = args.axis === undefined ? -1 : args.axis;
    this.axis = axis === null ? [] : Array.isArray(axis) ? [...axis] : [axis];
    this.meanValue = args.mean ?? null;
    this.varianceValue = args.variance ?? null;
    this.invert = args.invert ?? false;
    this.adapt = args.adapt ?? false;
    if ((this.meanValue === null) !== (this.varianceValue === null)) throw new Error('Normalization takes both mean and variance, or neither');
  }

  private keptShape(inputShape: Shape): { kept: number[]; dims: number[]; broadcast: number[] } {
    const rank = inputShape.length;
    const kept = this.axis.map((a) => (a < 0 ? rank + a : a));
    for (const a of kept) {
      if (a <= 0 || a >= rank) throw new Error(`Normalization axis ${a} is out of range for an input of rank ${rank}`);
      if (inputShape[a] == null) throw new Error(`Normalization needs a fixed size on axis ${a}`);
    }
    const dims = kept.map((a) => inputShape[a] as number);
    const broadcast = inputShape.map((d, i) => (kept.includes(i) ? (d as number) : 1));
    return { kept, dims, broadcast };
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const { dims } = this.keptShape(shape);
    if (this.meanValue === null) {
      this.meanW = this.addWeight('mean', dims, 'float32', tf.initializers.zeros(), undefined, false);
      this.varW = this.addWeight('variance', dims, 'float32', tf.initializers.ones(), undefined, false);
      this.addWeight('count', [], 'float32', tf.initializers.zeros(), undefined, false);
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const { broadcast } = this.keptShape([null, ...x.shape.slice(1)]);
      const asTensor = (w: tf.LayerVariable | null, v: number | number[] | null) =>
        w ? w.read().reshape(broadcast) : Array.isArray(v) && v.length > 1 ? tf.tensor(v).reshape(broadcast) : tf.scalar(Array.isArray(v) ? v[0] : (v as number));
      const mean = asTensor(this.meanW, this.meanValue);
      const variance = asTensor(this.varW, this.varianceValue);
      const std = tf.maximum(tf.sqrt(variance), EPSILON);
      return this.invert ? tf.add(tf.mul(x, std), mean) : tf.div(tf.sub(x, mean), std);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { axis: this.axis, mean: this.meanValue, variance: this.varianceValue, invert: this.invert, ...(this.adapt ? { adapt: true } : {}), ...super.getConfig() };
  }
}
tf.serialization.registerClass(Normalization);

// ---------------------------------------------------------------------------------------------

export interface MultiHeadAttentionArgs {
  name?: string;
  trainable?: boolean;
  dtype?: 'float32';
  numHeads: number;
  keyDim: number;
  valueDim?: number | null;
  dropout?: number;
  useBias?: boolean;
  outputShape?: number | number[] | null;
  useCausalMask?: boolean;
  kernelInitializer?: tf.serialization.Serializable | string;
  biasInitializer?: tf.serialization.Serializable | string;
  kernelRegularizer?: unknown;
  biasRegularizer?: unknown;
  kernelConstraint?: unknown;
  biasConstraint?: unknown;
}

type Init = Parameters<tf.layers.Layer['addWeight']>[3];

/**
 * Keras's MultiHeadAttention on [batch, time, features] inputs, called on [query, value] or
 * [query, value, key]. Weights as Keras makes them: query/key/value kernels [dim, heads, key_dim]
 * (value: value_dim) with biases [heads, dim], and attention_output [heads, value_dim, out] + [out].
 * scores = softmax(Q K^T / sqrt(key_dim)) (optionally causal), dropout on the scores when training.
 */
export class MultiHeadAttention extends tf.layers.Layer {
  static className = 'MultiHeadAttention';
  readonly numHeads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  readonly dropoutRate: number;
  readonly useBias: boolean;
  readonly outputDim: number | null;
  useCausalMask: boolean;
  private readonly kernelInit: Init;
  private readonly biasInit: Init;
  private readonly kernelReg: unknown;
  private readonly biasReg: unknown;
  private readonly kernelCon: unknown;
  private readonly biasCon: unknown;
  private w: Record<string, tf.LayerVariable | null> = {};

  constructor(args: MultiHeadAttentionArgs) {
    super(args as LayerArgs);
    this.numHeads = args.numHeads;
    this.keyDim = args.keyDim;
    this.valueDim = args.valueDim ?? args.keyDim;
    this.dropoutRate = args.dropout ?? 0;
    this.useBias = args.useBias ?? true;
    const os = args.outputShape;
    if (Array.isArray(os) && os.length !== 1) throw new Error('MultiHeadAttention output_shape must be one integer (the output feature size)');
    this.outputDim = os == null ? null : Array.isArray(os) ? os[0] : os;
    this.useCausalMask = args.useCausalMask ?? false;
    this.kernelInit = (args.kernelInitializer ?? tf.initializers.glorotUniform({})) as Init;
    this.biasInit = (args.biasInitializer ?? tf.initializers.zeros()) as Init;
    this.kernelReg = args.kernelRegularizer;
    this.biasReg = args.biasRegularizer;
    this.kernelCon = args.kernelConstraint;
    this.biasCon = args.biasConstraint;
    if (!(Number.isInteger(this.numHeads) && this.numHeads > 0)) throw new Error('num_heads must be a positive integer');
    if (!(Number.isInteger(this.keyDim) && this.keyDim > 0)) throw new Error('key_dim must be a positive integer');
  }

  private shapes(inputShape: tf.Shape | tf.Shape[]): Shape[] {
    if (!Array.isArray(inputShape[0])) throw new Error('MultiHeadAttention is called on [query, value] or [query, value, key]');
    const shapes = inputShape as Shape[];
    if (shapes.length < 2 || shapes.length > 3) throw new Error('MultiHeadAttention is called on [query, value] or [query, value, key]');
    for (const s of shapes) {
      if (s.length !== 3) throw new Error(`MultiHeadAttention here takes inputs of shape [batch, time, features] (got rank ${s.length})`);
      if (s[2] == null) throw new Error('MultiHeadAttention needs a fixed feature size');
    }
    return shapes;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const [q, v, k = v] = this.shapes(inputShape);
    const h = this.numHeads;
    const add = (name: string, shape: number[], bias: boolean) =>
      this.addWeight(name, shape, 'float32', bias ? this.biasInit : this.kernelInit, (bias ? this.biasReg : this.kernelReg) as never, true, (bias ? this.biasCon : this.kernelCon) as never);
    const out = this.outputDim ?? (q[2] as number);
    this.w.qk = add('query/kernel', [q[2] as number, h, this.keyDim], false);
    this.w.qb = this.useBias ? add('query/bias', [h, this.keyDim], true) : null;
    this.w.kk = add('key/kernel', [k[2] as number, h, this.keyDim], false);
    this.w.kb = this.useBias ? add('key/bias', [h, this.keyDim], true) : null;
    this.w.vk = add('value/kernel', [v[2] as number, h, this.valueDim], false);
    this.w.vb = this.useBias ? add('value/bias', [h, this.valueDim], true) : null;
    this.w.ok = add('attention_output/kernel', [h, this.valueDim, out], false);
    this.w.ob = this.useBias ? add('attention_output/bias', [out], true) : null;
    this.built = true;
  }

  /** [B, T, d] x [d, h, k] (+ [h, k]) -> [B, h, T, k] */
  private project(x: tf.Tensor, kernel: tf.LayerVariable, bias: tf.LayerVariable | null, dim: number): tf.Tensor {
    const [, t, d] = x.shape;
    let y = tf.matMul(x.reshape([-1, d]), kernel.read().reshape([d, this.numHeads * dim])).reshape([-1, t, this.numHeads, dim]);
    if (bias) y = tf.add(y, bias.read());
    return tf.transpose(y, [0, 2, 1, 3]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length < 2) throw new Error('MultiHeadAttention is called on [query, value] or [query, value, key]');
      const [query, value, key = value] = inputs;
      const Q = tf.mul(this.project(query, this.w.qk!, this.w.qb, this.keyDim), 1 / Math.sqrt(this.keyDim));
      const K = this.project(key, this.w.kk!, this.w.kb, this.keyDim);
      const V = this.project(value, this.w.vk!, this.w.vb, this.valueDim);
      let scores = tf.matMul(Q, K, false, true); // [B, h, Tq, Tk]
      const causal = (kwargs?.useCausalMask as boolean | undefined) ?? this.useCausalMask;
      if (causal) {
        const [tq, tk] = scores.shape.slice(2) as number[];
        const mask = tf.linalg.bandPart(tf.ones([tq, tk]), -1, 0);
        scores = tf.add(scores, tf.mul(tf.sub(1, mask), -1e9));
      }
      let probs = tf.softmax(scores, -1);
      if (kwargs?.training && this.dropoutRate > 0) probs = tf.dropout(probs, this.dropoutRate);
      const ctx = tf.transpose(tf.matMul(probs, V), [0, 2, 1, 3]); // [B, Tq, h, v]
      const tq = query.shape[1] as number;
      const out = this.outputDim ?? (query.shape[2] as number);
      let y = tf.matMul(ctx.reshape([-1, this.numHeads * this.valueDim]), this.w.ok!.read().reshape([this.numHeads * this.valueDim, out])).reshape([-1, tq, out]);
      if (this.w.ob) y = tf.add(y, this.w.ob.read());
      return y;
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const [q] = this.shapes(inputShape);
    return [q[0], q[1], this.outputDim ?? q[2]];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      numHeads: this.numHeads,
      keyDim: this.keyDim,
      valueDim: this.valueDim,
      dropout: this.dropoutRate,
      useBias: this.useBias,
      outputShape: this.outputDim,
      useCausalMask: this.useCausalMask,
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(MultiHeadAttention);
