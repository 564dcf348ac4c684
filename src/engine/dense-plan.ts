/**
 * Which fits the dense fast path (dense-trainer.ts) can run, and how: a chain of Dense layers
 * (the classic Keras MLP, Dropout between them allowed) with a loss, metrics and an optimizer
 * (Adam, SGD with or without momentum, RMSprop) it computes itself. Anything else (another
 * layer, a regularizer or constraint, a schedule, a custom loss...) answers with the reason and
 * trains through tfjs as before.
 */
import * as tf from '@tensorflow/tfjs';
import type { CompiledConfig } from '../model-spec/types.ts';
import { ACTIVATION_CODES } from './dense-kernels.ts';

export type DenseActivation = keyof typeof ACTIVATION_CODES | 'softmax';

export interface DenseLayerPlan {
  inputs: number;
  units: number;
  activation: DenseActivation;
  kernel: tf.Variable;
  bias: tf.Variable | null;
  /** The rate of a Dropout layer right after this one (0: none). */
  dropout: number;
}

/** What the loss kernel computes. */
export type DenseLoss = 'sparse_categorical_crossentropy' | 'categorical_crossentropy' | 'binary_crossentropy' | 'mean_squared_error';

export interface DensePlan {
  layers: DenseLayerPlan[];
  loss: DenseLoss;
  /** Per compiled metric of the output, which of the loss kernel's unweighted sums it logs: the loss's or its metric's. */
  metrics: Array<'loss' | 'metric'>;
  /** The update (sgd: without momentum); its parameters are read from the tfjs optimizer itself. */
  optimizer: 'adam' | 'sgd' | 'momentum' | 'rmsprop';
}

type DenseLike = tf.layers.Layer & {
  units: number;
  useBias: boolean;
  activation: { getClassName(): string };
  kernel: { read(): tf.Variable };
  bias: { read(): tf.Variable } | null;
  kernelRegularizer?: unknown; biasRegularizer?: unknown; activityRegularizer?: unknown;
  kernelConstraint?: unknown; biasConstraint?: unknown;
};

const LAST_FOR_LOSS: Record<DenseLoss, DenseActivation[]> = {
  sparse_categorical_crossentropy: ['softmax'],
  categorical_crossentropy: ['softmax'],
  binary_crossentropy: ['sigmoid'],
  mean_squared_error: ['linear', 'relu', 'sigmoid', 'tanh'],
};

/** The metric functions each loss kernel counts: function name -> which of its sums. */
const METRICS_FOR_LOSS: Record<DenseLoss, Record<string, 'loss' | 'metric'>> = {
  sparse_categorical_crossentropy: { sparse_categorical_accuracy: 'metric' },
  categorical_crossentropy: { categorical_accuracy: 'metric' },
  binary_crossentropy: { binary_accuracy: 'metric' },
  mean_squared_error: { mean_squared_error: 'loss', mean_absolute_error: 'metric' },
};

function isNone(v: unknown): boolean {
  return v === null || v === undefined;
}

/**
 * The plan for training `model` compiled as `compiled` on the dense fast path, or the reason it
 * cannot. `features` / `targets`: values per sample of the x and y columns.
 */
export function planDenseTraining(model: tf.LayersModel, compiled: CompiledConfig, data: { features: number; targets: number }): DensePlan | { reason: string } {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return { reason: 'several inputs or outputs' };
  const inShape = model.inputs[0]!.shape;
  if (inShape.length !== 2 || inShape[1] !== data.features) return { reason: 'the input is not a flat feature vector' };
  const layers: DenseLayerPlan[] = [];
  let previous: tf.layers.Layer | null = null;
  let width = data.features;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer' && previous === null && layers.length === 0) {
      previous = layer;
      continue;
    }
    if (cls !== 'Dense' && cls !== 'Dropout') return { reason: `layer ${layer.name} is a ${cls}` };
    const inbound = layer.inboundNodes;
    const from = inbound.length === 1 ? inbound[0]!.inboundLayers : [];
    if (from.length !== 1 || (previous !== null && from[0] !== previous) || (previous === null && from[0]!.getClassName() !== 'InputLayer')) {
      return { reason: `layer ${layer.name} is not in a single chain` };
    }
    if (cls === 'Dropout') {
      // Dropout after a Dense layer (once), with tfjs's plain arguments: the trainer applies it.
      const drop = layer as tf.layers.Layer & { rate: number; noiseShape?: unknown };
      const last = layers[layers.length - 1];
      if (!last || previous?.getClassName() !== 'Dense' || !isNone(drop.noiseShape)) return { reason: `layer ${layer.name} is a Dropout the dense path does not take` };
      last.dropout = drop.rate;
      previous = layer;
      continue;
    }
    const d = layer as DenseLike;
    if (!d.trainable) return { reason: `layer ${layer.name} is frozen` };
    if (![d.kernelRegularizer, d.biasRegularizer, d.activityRegularizer, d.kernelConstraint, d.biasConstraint].every(isNone)) {
      return { reason: `layer ${layer.name} has a regularizer or constraint` };
    }
    const activation = d.activation.getClassName() as DenseActivation;
    if (!(activation in ACTIVATION_CODES) && activation !== 'softmax') return { reason: `layer ${layer.name} has activation ${activation}` };
    const kernel = d.kernel.read();
    const bias = d.useBias && d.bias ? d.bias.read() : null;
    if (kernel.dtype !== 'float32' || kernel.shape[0] !== width || kernel.shape[1] !== d.units) return { reason: `layer ${layer.name} has an unexpected kernel` };
    layers.push({ inputs: width, units: d.units, activation, kernel, bias, dropout: 0 });
    width = d.units;
    previous = layer;
  }
  if (layers.length === 0 || model.outputs[0]!.sourceLayer !== previous || previous.getClassName() !== 'Dense') return { reason: 'no chain of Dense layers to the output' };
  if (layers.slice(0, -1).some((l) => l.activation === 'softmax')) return { reason: 'softmax before the last layer' };
  if (model.trainableWeights.length !== layers.reduce((k, l) => k + (l.bias ? 2 : 1), 0) || model.nonTrainableWeights.length > 0) {
    return { reason: 'weights outside the Dense chain' };
  }

  const loss = compiled.losses[0]!;
  const name = loss.name as DenseLoss;
  if (loss.expression || !(name in LAST_FOR_LOSS)) return { reason: `loss ${loss.name}` };
  if (loss.params.from_logits === true || Number(loss.params.label_smoothing ?? 0) !== 0) return { reason: 'from_logits or label_smoothing' };
  if ((compiled.loss_weights[0] ?? 1) !== 1) return { reason: 'a loss weight' };
  const last = layers[layers.length - 1]!;
  if (!LAST_FOR_LOSS[name].includes(last.activation)) return { reason: `loss ${name} after a ${last.activation} output` };
  const targets = name === 'sparse_categorical_crossentropy' ? 1 : last.units;
  if (data.targets !== targets) return { reason: 'the targets do not match the output' };

  const metrics: DensePlan['metrics'] = [];
  for (const m of compiled.metrics[0] ?? []) {
    const which = METRICS_FOR_LOSS[name][m.fn];
    if (m.expression || which === undefined) return { reason: `metric ${m.fn} with loss ${name}` };
    if (m.fn === 'binary_accuracy' && Number(m.params.threshold ?? 0.5) !== 0.5) return { reason: 'binary_accuracy threshold' };
    metrics.push(which);
  }

  const opt = compiled.optimizer;
  const p = opt.params;
  if (opt.schedule) return { reason: 'a learning-rate schedule' };
  const plan = (optimizer: DensePlan['optimizer']): DensePlan => ({ layers, loss: name, metrics, optimizer });
  if (opt.type === 'adam' && p.amsgrad !== true) return plan('adam');
  if (opt.type === 'sgd') return plan(Number(p.momentum ?? 0) > 0 ? 'momentum' : 'sgd');
  if (opt.type === 'rmsprop' && p.centered !== true) return plan('rmsprop');
  return { reason: `optimizer ${opt.type}${opt.type === 'rmsprop' ? ' (centered)' : ''}` };
}
