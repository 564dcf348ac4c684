/**
 * Activations written as expressions of x: {"expression": "x * sigmoid(x)"}.
 *
 * tfjs serialises a layer's activation by class name only, so each expression gets its own
 * registered class named "exprhex<text as hex>" (hex survives tfjs's renaming of config
 * strings); a saved model keeps the expression in that name and registerSavedActivations()
 * re-creates the classes before the model is loaded elsewhere.
 */
import * as tf from '@tensorflow/tfjs';
import { asFloatTensor, compileExpression, evaluate } from './evaluate.ts';
import { ExpressionError, type Node } from './parser.ts';
import { fromSafeText, toSafeText } from './tfjs-safe-text.ts';

export const ACTIVATION_PREFIX = 'exprhex';
const ACTIVATION_NAMES: ReadonlySet<string> = new Set(['x']);

/** Runs the expression on x; its output must keep x's shape. */
function applyActivation(ast: Node, x: tf.Tensor): tf.Tensor {
  try {
    return runActivation(ast, x);
  } catch (err) {
    if (err instanceof ExpressionError) err.field ??= 'activation';
    throw err;
  }
}

function runActivation(ast: Node, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const y = asFloatTensor(evaluate(ast, new Map([['x', x]])), 'the activation expression');
    if (y.shape.length !== x.shape.length || y.shape.some((d, i) => d !== x.shape[i])) {
      if (y.rank === 0) return y.broadcastTo(x.shape);
      throw new ExpressionError(`the activation expression must keep the shape of x: it turns [${x.shape.join(', ')}] into [${y.shape.join(', ')}]`, 0, 'an element-wise expression');
    }
    return y;
  });
}

const registered = new Map<string, tf.serialization.SerializableConstructor<tf.serialization.Serializable>>();

/** The class name an expression activation is saved under. */
export function activationClassName(text: string): string {
  return `${ACTIVATION_PREFIX}${toSafeText(text)}`;
}

/**
 * Validates an activation expression (including a trial run on a small tensor) and registers
 * its class; returns the name tfjs layers take as `activation`. Throws ExpressionError.
 */
export function registerExpressionActivation(text: unknown): string {
  const ast = compileExpression(text, ACTIVATION_NAMES);
  const className = activationClassName(text as string);
  if (registered.has(className)) return className;
  tf.tidy(() => {
    const x = tf.linspace(-2, 2, 12).reshape([2, 2, 3]);
    applyActivation(ast, x);
    // Training needs a gradient with respect to x.
    try {
      tf.grad((v: tf.Tensor) => applyActivation(ast, v).sum())(x);
    } catch (err) {
      if (err instanceof ExpressionError) throw err;
      throw new ExpressionError(`the activation expression cannot be differentiated (${(err as Error).message.replace(/\s+/g, ' ')})`, 0);
    }
  });
  class ExpressionActivation extends tf.serialization.Serializable {
    static className = className;
    apply(x: tf.Tensor): tf.Tensor {
      return applyActivation(ast, x);
    }
    getConfig(): tf.serialization.ConfigDict {
      return {};
    }
  }
  tf.serialization.registerClass(ExpressionActivation);
  registered.set(className, ExpressionActivation);
  return className;
}

/** Registers every expression activation named in a saved model topology, so it loads. */
export function registerSavedActivations(topology: unknown): void {
  const walk = (node: unknown, depth: number): void => {
    if (depth > 64) return;
    if (typeof node === 'string') {
      if (node.startsWith(ACTIVATION_PREFIX)) registerExpressionActivation(fromSafeText(node.slice(ACTIVATION_PREFIX.length)));
    } else if (Array.isArray(node)) node.forEach((n) => walk(n, depth + 1));
    else if (node && typeof node === 'object') for (const v of Object.values(node)) walk(v, depth + 1);
  };
  walk(topology, 0);
}
