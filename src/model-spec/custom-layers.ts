/**
 * Keras pieces tfjs 4.22 lacks: the Subtract merge layer and the `exponential` activation.
 * Both are registered with tf.serialization so that a saved model loads back.
 */
import * as tf from '@tensorflow/tfjs';

type Shape = Array<number | null>;

/** Keras's broadcast of two element-wise merge inputs (without the batch dim handling tfjs skips). */
function broadcastShapes(a: Shape, b: Shape): Shape {
  const out: Shape = [];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i];
    const y = b[b.length - n + i];
    if (x === undefined) out.push(y ?? null);
    else if (y === undefined) out.push(x);
    else if (x === null || y === null) out.push(x === 1 ? y : y === 1 ? x : x ?? y);
    else if (x === 1) out.push(y);
    else if (y === 1 || x === y) out.push(x);
    else throw new Error(`Subtract inputs have incompatible shapes [${a.join(', ')}] and [${b.join(', ')}]`);
  }
  return out;
}

/** Keras's `layers.Subtract()`: inputs[0] - inputs[1], exactly two inputs. */
export class Subtract extends tf.layers.Layer {
  static className = 'Subtract';

  constructor(args: ConstructorParameters<typeof tf.layers.Layer>[0] = {}) {
    super(args);
    this.supportsMasking = true;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    if (!Array.isArray(inputShape[0]) || inputShape.length !== 2) {
      throw new Error('A Subtract layer should be called on exactly 2 inputs');
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Record<string, unknown>): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2) throw new Error('A Subtract layer should be called on exactly 2 inputs');
    return tf.tidy(() => tf.sub(inputs[0], inputs[1]));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    if (!Array.isArray(inputShape[0]) || inputShape.length !== 2) {
      throw new Error('A Subtract layer should be called on exactly 2 inputs');
    }
    const [a, b] = inputShape as tf.Shape[];
    return [a[0] ?? b[0] ?? null, ...broadcastShapes(a.slice(1), b.slice(1))];
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor {
    // tfjs's typing says Tensor, but null (no mask) is what Layer.computeMask returns too.
    const none = null as unknown as tf.Tensor;
    if (!Array.isArray(mask)) return none;
    const masks = mask.filter((m) => m != null);
    if (masks.length === 0) return none;
    return tf.tidy(() => masks.slice(1).reduce((acc, m) => tf.logicalAnd(acc, m), masks[0]));
  }
}
tf.serialization.registerClass(Subtract);

/** Keras's `exponential` activation, which tfjs lacks; found by tfjs's activation lookup by this class name. */
export class ExponentialActivation extends tf.serialization.Serializable {
  static className = 'exponential';
  apply(x: tf.Tensor): tf.Tensor {
    return tf.exp(x);
  }
  getConfig(): tf.serialization.ConfigDict {
    return {};
  }
}
tf.serialization.registerClass(ExponentialActivation);
