/**
 * Losses and metrics written as expressions of y_true and y_pred, and the trial run that
 * checks one against real shapes before any training starts.
 */
import * as tf from '@tensorflow/tfjs';
import { asFloatTensor, compileExpression, evaluate } from './evaluate.ts';
import { alignTrue } from '../model-spec/align-targets.ts';
import { ExpressionError, type Node } from './parser.ts';

export const LOSS_NAMES: ReadonlySet<string> = new Set(['y_true', 'y_pred']);

type PerSampleFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/**
 * Per-sample values [batch] from what the expression gives: a scalar counts for every sample
 * (as Keras broadcasts it against sample weights), [batch, ...] is averaged over its other axes.
 */
function perSample(v: tf.Tensor, batch: number, what: string): tf.Tensor {
  if (v.rank === 0) return v.broadcastTo([batch]);
  if (v.shape[0] !== batch) {
    throw new ExpressionError(
      `${what} must give one number (a scalar) or one value per sample (shape [batch, ...]); it gives shape [${v.shape.join(', ')}] for a batch of ${batch}`,
      0,
      'a reduction such as mean(..., axis=-1)',
    );
  }
  if (v.rank === 1) return v;
  return v.mean(Array.from({ length: v.rank - 1 }, (_, i) => i + 1));
}

/** (yTrue, yPred) -> per-sample values [batch] for a loss or metric expression. */
export function expressionLossFunction(text: string, what = 'the loss expression'): PerSampleFn {
  const ast = compileExpression(text, LOSS_NAMES);
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const scope = new Map([['y_true', alignTrue(yTrue.cast('float32'), yPred)], ['y_pred', yPred.cast('float32')]]);
      return perSample(asFloatTensor(evaluate(ast, scope), what), yPred.shape[0]!, what);
    });
}

/** A concrete shape for a trial: the batch first, unknown sizes filled in. */
function trialShape(batch: number, shape: Array<number | null>, fill: number): number[] {
  return [batch, ...shape.map((d) => (d === null ? fill : d))];
}

/**
 * Runs a loss or metric expression on zeros of the given per-sample shapes (twice, with two
 * batch sizes) and, for a loss, takes its gradient with respect to y_pred. Throws
 * ExpressionError saying what does not fit.
 */
export function trialLossExpression(ast: Node, predShape: Array<number | null>, trueShape: Array<number | null>, differentiable: boolean, what: string): void {
  for (const batch of [2, 3]) {
    tf.tidy(() => {
      const yPred = tf.zeros(trialShape(batch, predShape, 4)).add(0.5);
      const yTrue = tf.zeros(trialShape(batch, trueShape, 4));
      const run = (p: tf.Tensor) => {
        const scope = new Map([['y_true', alignTrue(yTrue, p)], ['y_pred', p]]);
        return perSample(asFloatTensor(evaluate(ast, scope), what), batch, what).mean() as tf.Scalar;
      };
      if (!differentiable) return run(yPred);
      try {
        return tf.grad(run)(yPred);
      } catch (err) {
        if (err instanceof ExpressionError) throw err;
        const msg = err instanceof Error ? err.message : String(err);
        throw new ExpressionError(`${what} cannot be differentiated with respect to y_pred (${msg.replace(/\s+/g, ' ')}); a loss must be built from differentiable functions`, 0);
      }
    });
  }
}

/** Parses a loss or metric expression and checks it on an output's shape; returns the AST. */
export function checkLossExpression(text: unknown, outputShape: Array<number | null>, differentiable: boolean, what: string): Node {
  const ast = compileExpression(text, LOSS_NAMES);
  // Targets may be shaped like the output, or be class labels (the output without its last axis).
  const candidates = [outputShape, [...outputShape.slice(0, -1), 1]];
  let first: unknown;
  for (const trueShape of candidates) {
    try {
      trialLossExpression(ast, outputShape, trueShape, differentiable, what);
      return ast;
    } catch (err) {
      first ??= err;
    }
  }
  throw first;
}
