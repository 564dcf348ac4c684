import type * as tf from '@tensorflow/tfjs';

/** Dense targets given as [batch] for a [batch, 1] output (or any same-size layout) take the prediction's shape. */
export function alignTrue(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return yTrue.rank !== yPred.rank && yTrue.size === yPred.size ? yTrue.reshape(yPred.shape) : yTrue;
}
