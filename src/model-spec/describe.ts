import * as tf from '@tensorflow/tfjs';
import type { Shape, TensorInfo } from './types.ts';

function names(declared: string[] | undefined, tensors: tf.SymbolicTensor[]): string[] {
  // tfjs fills inputNames/outputNames when a model is built (a Sequential only on build());
  // otherwise the layer that makes each tensor names it, as Keras does.
  if (declared && declared.length === tensors.length) return declared;
  return tensors.map((t) => t.sourceLayer.name);
}

/** Model inputs and outputs, names = input layer names / output layer names, shapes without the batch dim. */
export function describeModel(model: tf.LayersModel): { inputs: TensorInfo[]; outputs: TensorInfo[] } {
  const inNames = names(model.inputNames, model.inputs);
  const outNames = names(model.outputNames, model.outputs);
  return {
    inputs: model.inputs.map((t, i) => ({ name: inNames[i], shape: t.shape.slice(1) as Shape })),
    outputs: model.outputs.map((t, i) => ({ name: outNames[i], shape: t.shape.slice(1) as Shape })),
  };
}
