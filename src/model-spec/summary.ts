/**
 * The model summary: as JSON for the API, and as the Keras 2 (tf.keras 2.13-2.15)
 * `model.summary()` text, character for character (keras/utils/layer_utils.py print_summary).
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelSummary, SummaryLayer } from './types.ts';

type Dims = Array<number | null>;
type TfNode = tf.layers.Layer['inboundNodes'][number];

/** Keras class name of a layer: tfjs calls a functional model "Model", Keras "Functional". */
function kerasClassName(layer: tf.layers.Layer): string {
  const name = layer.getClassName();
  return name === 'Model' ? 'Functional' : name;
}

const isSequential = (model: tf.LayersModel) => model instanceof tf.Sequential;

/** The node through which a layer takes part in this model (one per layer in our models). */
function nodeIn(model: tf.LayersModel, layer: tf.layers.Layer): TfNode | undefined {
  const nodes = layer.inboundNodes;
  if (!isSequential(model) && model.containerNodes) {
    for (let i = nodes.length - 1; i >= 0; i--) {
      if (model.containerNodes.has(`${layer.name}_ib-${i}`)) return nodes[i];
    }
  }
  return nodes[nodes.length - 1];
}

function outputShapes(model: tf.LayersModel, layer: tf.layers.Layer): Dims[] {
  const node = nodeIn(model, layer);
  if (node) return node.outputTensors.map((t) => [...t.shape]);
  try {
    const s = layer.outputShape;
    return Array.isArray(s[0]) ? (s as Dims[]) : [s as Dims];
  } catch {
    return [];
  }
}

/** Inbound connections of a layer within the model: [layer name, node index, tensor index]. */
function connections(model: tf.LayersModel, layer: tf.layers.Layer): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  layer.inboundNodes.forEach((node, i) => {
    if (model.containerNodes && model.containerNodes.size > 0 && !model.containerNodes.has(`${layer.name}_ib-${i}`)) return;
    node.inboundLayers.forEach((inbound, j) => out.push([inbound.name, node.nodeIndices[j], node.tensorIndices[j]]));
  });
  return out;
}

function countParams(layer: tf.layers.Layer): number {
  try {
    return layer.countParams();
  } catch {
    return 0; // not built: no weights
  }
}

const sumSizes = (weights: tf.LayerVariable[]) => weights.reduce((n, w) => n + w.shape.reduce<number>((p, d) => p * (d ?? 0), 1), 0);
const memorySize = (weights: tf.LayerVariable[]) =>
  weights.reduce((n, w) => n + w.shape.reduce<number>((p, d) => p * (d ?? 0), 1) * (w.dtype === 'bool' ? 1 : 4), 0);

/** One entry per layer in Keras order (the InputLayer of a sequential model left out, as Keras does). */
export function summarize(model: tf.LayersModel): ModelSummary {
  const functional = !isSequential(model);
  const layers: SummaryLayer[] = model.layers.map((layer) => {
    const shapes = outputShapes(model, layer);
    const entry: SummaryLayer = {
      name: layer.name,
      type: kerasClassName(layer),
      output_shape: shapes.length === 1 ? shapes[0] : shapes,
      params: countParams(layer),
    };
    if (functional) entry.connected_to = connections(model, layer).map(([name]) => name);
    return entry;
  });
  const trainable = sumSizes(model.trainableWeights);
  const nonTrainable = sumSizes(model.nonTrainableWeights);
  return { layers, total_params: trainable + nonTrainable, trainable_params: trainable, non_trainable_params: nonTrainable };
}

// ---------------------------------------------------------------------------------------------
// Text

const pyDim = (d: number | null) => (d === null ? 'None' : String(d));
/** Python's str() of a shape tuple: "(None, 64)", "(None,)". */
const pyTuple = (s: Dims) => (s.length === 1 ? `(${pyDim(s[0])},)` : `(${s.map(pyDim).join(', ')})`);

/** Python's "{:.2f}".format(x): like toFixed, but exact ties round half to even. */
function pyFixed2(x: number): string {
  const y = x * 100;
  const floor = Math.floor(y);
  if (y - floor === 0.5) return ((floor % 2 === 0 ? floor : floor + 1) / 100).toFixed(2);
  return x.toFixed(2);
}

/** Keras's readable_memory_size. */
export function readableMemorySize(bytes: number): string {
  const units = ['Byte', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let size = bytes;
  for (const unit of units) {
    if (size / 1024 < 1) return `${pyFixed2(size)} ${unit}`;
    size /= 1024;
  }
  return `${pyFixed2(size)} ${units[units.length - 1]}`;
}

/** Keras's print_row (nested_level 0): fixed columns, wrapping long fields after "),", "'," ... */
function printRow(fields: string[], positions: number[], lines: string[]): void {
  const left = [...fields];
  while (left.some((f) => f.length > 0)) {
    let line = '';
    for (let col = 0; col < left.length; col++) {
      const start = col > 0 ? positions[col - 1] : 0;
      const last = col === positions.length - 1;
      const space = last ? 0 : 2;
      let cutoff = positions[col] - start - space;
      if (!last) cutoff -= 1;
      let fit = left[col].slice(0, cutoff);
      const candidates = ['),', '},', '],', "',"]
        .map((x) => (fit.indexOf(x) >= 0 ? fit.indexOf(x) + x.length : -1))
        .filter((k) => k >= 0);
      if (candidates.length > 0) {
        cutoff = Math.min(...candidates);
        fit = fit.slice(0, cutoff);
      }
      if (col === 0) line += ' ';
      line += fit;
      line += ' '.repeat(space);
      left[col] = left[col].slice(cutoff);
      line += ' '.repeat(Math.max(0, positions[col] - line.length));
    }
    lines.push(line);
  }
}

/** Keras's test: a functional model that is one chain of single-input layers prints like a sequential one. */
function sequentialLike(model: tf.LayersModel): boolean {
  if (isSequential(model)) return true;
  const byDepth = model.nodesByDepth ?? {};
  const seen = new Set<TfNode>();
  for (const nodes of Object.values(byDepth)) {
    if (nodes.length > 1 || (nodes.length === 1 && nodes[0].inboundLayers.length > 1)) return false;
    nodes.forEach((n) => seen.add(n));
  }
  for (const layer of model.layers) {
    if (layer.inboundNodes.filter((n) => seen.has(n)).length > 1) return false; // shared layer
  }
  return true;
}

/** The Keras 2 `model.summary()` text table, each line ending in "\n". */
export function summaryText(model: tf.LayersModel): string {
  const seqLike = sequentialLike(model);
  const lineLength = seqLike ? 65 : 98;
  const positions = (seqLike ? [0.45, 0.85, 1.0] : [0.3, 0.6, 0.7, 1.0]).map((p) => Math.floor(lineLength * p));
  const header = seqLike ? ['Layer (type)', 'Output Shape', 'Param #'] : ['Layer (type)', 'Output Shape', 'Param #', 'Connected to'];
  const lines: string[] = [`Model: "${model.name}"`, '_'.repeat(lineLength)];
  printRow(header, positions, lines);
  lines.push('='.repeat(lineLength));

  for (const layer of model.layers) {
    const shapes = outputShapes(model, layer);
    const className = kerasClassName(layer);
    // Keras reports an InputLayer's output shape as a list of one tuple: "[(None, 784)]".
    const shapeText =
      shapes.length === 1 && className !== 'InputLayer' ? pyTuple(shapes[0]) : `[${shapes.map(pyTuple).join(', ')}]`;
    const fields = [`${layer.name} (${className})`, shapeText, String(countParams(layer))];
    if (!seqLike) fields.push(`[${connections(model, layer).map(([n, ni, ti]) => `'${n}[${ni}][${ti}]'`).join(', ')}]`);
    printRow(fields, positions, lines);
    lines.push(' '.repeat(lineLength));
  }
  lines.push('='.repeat(lineLength));

  const trainable = sumSizes(model.trainableWeights);
  const nonTrainable = sumSizes(model.nonTrainableWeights);
  const trainableBytes = memorySize(model.trainableWeights);
  const nonTrainableBytes = memorySize(model.nonTrainableWeights);
  lines.push(`Total params: ${trainable + nonTrainable} (${readableMemorySize(trainableBytes + nonTrainableBytes)})`);
  lines.push(`Trainable params: ${trainable} (${readableMemorySize(trainableBytes)})`);
  lines.push(`Non-trainable params: ${nonTrainable} (${readableMemorySize(nonTrainableBytes)})`);
  lines.push('_'.repeat(lineLength));
  return `${lines.join('\n')}\n`;
}
