/**
 * How layers create their weights (tfjs-layers' Layer.addWeight), two ways changed:
 * - installTidyInitializers(): an initializer's intermediate tensors are freed. tfjs's LSTM
 *   bias initializer (unit_forget_bias) leaves four behind on every build otherwise.
 * - withZeroWeights(build): building a model only to read its shapes (validation, summary, an
 *   import whose weights come from the upload) creates every weight as zeros, so no initializer
 *   runs (no random draws, no orthogonal QR). tfjs-layers does the same for the models it loads
 *   (fastWeightInitDuringBuild); this covers the layers we create.
 */
import * as tf from '@tensorflow/tfjs';

interface WeightInitializer { apply(shape: number[], dtype?: string): tf.Tensor }
type AddWeight = (name: string, shape: number[], dtype?: string, initializer?: WeightInitializer, ...rest: unknown[]) => unknown;

const proto = tf.layers.Layer.prototype as unknown as { addWeight: AddWeight };
let tidyInstalled = false;

/** Runs every weight initializer inside tf.tidy (idempotent). */
export function installTidyInitializers(): void {
  if (tidyInstalled) return;
  tidyInstalled = true;
  const addWeight = proto.addWeight;
  proto.addWeight = function (this: unknown, name, shape, dtype, initializer, ...rest) {
    const tidied = initializer && { apply: (s: number[], d?: string) => tf.tidy(() => initializer.apply(s, d)) };
    return addWeight.call(this, name, shape, dtype, tidied, ...rest);
  };
}

/** Runs `build` with every layer weight created as zeros (no initializer runs). */
export function withZeroWeights<T>(build: () => T): T {
  const addWeight = proto.addWeight;
  const zeros = tf.initializers.zeros() as unknown as WeightInitializer;
  proto.addWeight = function (this: unknown, name, shape, dtype, _initializer, regularizer, trainable, constraint) {
    return addWeight.call(this, name, shape, dtype, zeros, regularizer, trainable, constraint);
  };
  try {
    return build();
  } finally {
    proto.addWeight = addWeight;
  }
}
