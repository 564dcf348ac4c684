import fs from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeDirAtomically } from '../storage/paths.ts';
// Registers our own layer classes (ReLU, Custom, ...) so saved models that use them load.
import './build-model.ts';
import { registerSavedActivations } from '../expressions/expression-activation.ts';

/** Writes a model in the TensorFlow.js layers format (model.json + weights.bin, as tfjs-node's file:// handler does) into `dir`. */
export async function writeModelFiles(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData ? tf.io.concatenateArrayBuffers([artifacts.weightData].flat()) : new ArrayBuffer(0);
      await fs.writeFile(path.join(dir, 'weights.bin'), new Uint8Array(weightData));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weightData.byteLength } };
    }),
  );
}

/** Saves a model version atomically (written to a temporary directory, then renamed into place). */
export async function saveModelFiles(model: tf.LayersModel, dataDir: string, target: string): Promise<void> {
  await writeDirAtomically(dataDir, target, (dir) => writeModelFiles(model, dir));
}

/** Loads a model version written by saveModelFiles. */
export async function loadModelFiles(dir: string): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
  const weights = await fs.readFile(path.join(dir, 'weights.bin'));
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  // Expression activations are classes named after their expression: make them before loading.
  registerSavedActivations(modelJson.modelTopology);
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap((g: { weights: tf.io.WeightsManifestEntry[] }) => g.weights),
      weightData,
    }),
  );
}
