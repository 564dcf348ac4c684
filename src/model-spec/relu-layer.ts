import * as tf from '@tensorflow/tfjs';

/**
 * Keras's `backend.relu(x, alpha, max_value, threshold)` (tf.keras 2.x), op for op:
 *   f(x) = max_value          for x >= max_value
 *   f(x) = x                  for threshold < x < max_value
 *   f(x) = alpha * (x - threshold)  otherwise
 * with the same special cases Keras takes (leaky_relu, relu6), so results match bit for bit
 * where the kernels do.
 */
export function kerasRelu(x: tf.Tensor, alpha = 0, maxValue: number | null = null, threshold = 0): tf.Tensor {
  return tf.tidy(() => {
    let negativePart: tf.Tensor | undefined;
    if (alpha !== 0) {
      if (maxValue == null && threshold === 0) return tf.leakyRelu(x, alpha);
      negativePart = threshold !== 0 ? tf.relu(tf.add(tf.neg(x), threshold)) : tf.relu(tf.neg(x));
    }
    let clipMax = maxValue != null;
    let y: tf.Tensor;
    if (threshold !== 0) {
      // x where x > threshold else 0. tf.step has a gradient (tf.greater has none in tfjs).
      y = tf.mul(x, tf.step(tf.sub(x, threshold)));
    } else if (maxValue === 6) {
      y = tf.relu6(x);
      clipMax = false;
    } else {
      y = tf.relu(x);
    }
    if (clipMax) y = tf.clipByValue(y, 0, maxValue as number);
    if (negativePart) y = tf.sub(y, tf.mul(alpha, negativePart));
    return y;
  });
}

export interface KerasReLUArgs {
  name?: string;
  trainable?: boolean;
  dtype?: 'float32';
  inputShape?: Array<number | null>;
  batchInputShape?: Array<number | null>;
  batchSize?: number;
  /** Upper bound of the output; null for none. */
  maxValue?: number | null;
  /** Slope for values below the threshold (Keras `negative_slope`). */
  negativeSlope?: number;
  /** Values at or below it are "negative". */
  threshold?: number;
}

/**
 * Keras's `layers.ReLU(max_value, negative_slope, threshold)`. tfjs's own ReLU layer only has
 * maxValue; this replaces it under the same class name "ReLU", so a saved model.json carries
 * `max_value`, `negative_slope` and `threshold` as Keras writes them, and loads back here.
 * (It also still loads models saved with tfjs's ReLU: their config has only maxValue.)
 */
export class KerasReLU extends tf.layers.Layer {
  static className = 'ReLU';
  readonly maxValue: number | null;
  readonly negativeSlope: number;
  readonly threshold: number;

  constructor(args: KerasReLUArgs = {}) {
    super(args as ConstructorParameters<typeof tf.layers.Layer>[0]);
    this.supportsMasking = true;
    this.maxValue = args.maxValue ?? null;
    this.negativeSlope = args.negativeSlope ?? 0;
    this.threshold = args.threshold ?? 0;
    if (this.maxValue != null && !(this.maxValue >= 0)) {
      throw new Error(`max_value of a ReLU layer cannot be negative (got ${this.maxValue})`);
    }
    if (!(this.negativeSlope >= 0)) {
      throw new Error(`negative_slope of a ReLU layer cannot be negative (got ${this.negativeSlope})`);
    }
    if (!(this.threshold >= 0)) {
      throw new Error(`threshold of a ReLU layer cannot be negative (got ${this.threshold})`);
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return kerasRelu(x, this.negativeSlope, this.maxValue, this.threshold);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    // camelCase here; tfjs writes config keys in snake_case (max_value, negative_slope, threshold).
    return {
      maxValue: this.maxValue,
      negativeSlope: this.negativeSlope,
      threshold: this.threshold,
      ...super.getConfig(),
    };
  }
}
tf.serialization.registerClass(KerasReLU);
