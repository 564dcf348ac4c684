/**
 * A running fit's checkpoints under DATA_DIR: the model's weights, the optimizer's state,
 * where the loop stands (epoch, batch, partial sums), the history, the shuffle seed and
 * the callbacks' state. Each save is a new directory renamed into place whole, so a worker
 * killed mid-save leaves the previous checkpoint intact; older ones are then removed.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModelFiles, writeModelFiles } from '../model-spec/model-io.ts';
import { paths, writeDirAtomically } from '../storage/paths.ts';
import { optimizerState } from '../model-spec/optimizers.ts';

export interface CheckpointState {
  /** The epoch to continue and its first batch still to run (0 at an epoch boundary). */
  epoch: number;
  batch: number;
  /** Train log sums of the batches already run in `epoch`, and their sample count. */
  sums: number[] | null;
  seen: number;
  /** Every completed epoch's logs, from the job's first epoch. */
  history: Record<string, number[]>;
  shuffle_seed: number;
  /** Each callback's own state (in the fit's callbacks order). */
  callbacks: unknown[];
  /** The learning rate now (reduce_lr_on_plateau may have lowered it). */
  learning_rate: number | null;
  /** Training time spent so far over every attempt (max_seconds counts it all). */
  elapsed_ms: number;
  saved_at: string;
}

export interface Checkpoint {
  state: CheckpointState;
  model: tf.LayersModel;
  optimizerWeights: Array<{ name: string; tensor: tf.Tensor }>;
  /** Weights kept by restore_best_weights / model_checkpoint, by callback type, when any. */
  bestWeights: Record<string, tf.Tensor[]> | null;
}

interface TensorSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

/** Named tensors as a JSON manifest plus one binary file of their values. */
async function writeTensors(dir: string, base: string, tensors: Array<{ name: string; tensor: tf.Tensor }>): Promise<void> {
  const specs: TensorSpec[] = [];
  const parts: Uint8Array[] = [];
  for (const { name, tensor } of tensors) {
    const data = await tensor.data();
    specs.push({ name, shape: tensor.shape, dtype: tensor.dtype === 'int32' ? 'int32' : 'float32' });
    const typed = tensor.dtype === 'int32' ? Int32Array.from(data as Int32Array) : Float32Array.from(data as Float32Array);
    parts.push(new Uint8Array(typed.buffer));
  }
  await fs.writeFile(path.join(dir, `${base}.json`), JSON.stringify(specs));
  await fs.writeFile(path.join(dir, `${base}.bin`), Buffer.concat(parts));
}

async function readTensors(dir: string, base: string): Promise<Array<{ name: string; tensor: tf.Tensor }> | null> {
  let specs: TensorSpec[];
  try {
    specs = JSON.parse(await fs.readFile(path.join(dir, `${base}.json`), 'utf8'));
  } catch {
    return null;
  }
  const bytes = await fs.readFile(path.join(dir, `${base}.bin`));
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let offset = 0;
  return specs.map(({ name, shape, dtype }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = dtype === 'int32' ? new Int32Array(buffer, offset, size) : new Float32Array(buffer, offset, size);
    offset += size * 4;
    return { name, tensor: tf.tensor(values, shape, dtype) };
  });
}

/** Directories are c00000001, c00000002, ...: the newest sorts last. */
async function listSaves(root: string): Promise<string[]> {
  try {
    return (await fs.readdir(root)).filter((n) => /^c\d{8}$/.test(n)).sort();
  } catch {
    return [];
  }
}

/** Saves a checkpoint of `model` and the optimizer for a job; returns when it is durable on disk. */
export async function saveCheckpoint(
  dataDir: string,
  tenant: string,
  jobId: string,
  save: { model: tf.LayersModel; optimizer: tf.Optimizer; state: CheckpointState; bestWeights: Record<string, tf.Tensor[]> | null },
): Promise<void> {
  const root = paths.checkpoints(dataDir, tenant, jobId);
  const previous = await listSaves(root);
  const next = `c${String(previous.length ? Number(previous.at(-1)!.slice(1)) + 1 : 1).padStart(8, '0')}`;
  const optimizerWeights = await optimizerState(save.optimizer);
  try {
    await writeDirAtomically(dataDir, path.join(root, next), async (dir) => {
      await writeModelFiles(save.model, dir);
      await writeTensors(dir, 'optimizer', optimizerWeights);
      for (const [key, ws] of Object.entries(save.bestWeights ?? {})) {
        await writeTensors(dir, `best-${key}`, ws.map((tensor, i) => ({ name: String(i), tensor })));
      }
      await fs.writeFile(path.join(dir, 'state.json'), JSON.stringify(save.state));
    });
  } finally {
    // getWeights() returns the optimizer's own variables plus new tensors (the step count): free those.
    for (const { tensor } of optimizerWeights) if (!(tensor instanceof tf.Variable)) tensor.dispose();
  }
  for (const old of previous) await fs.rm(path.join(root, old), { recursive: true, force: true });
}

/** The newest checkpoint of a job, or null when it has none (its tensors are the caller's to dispose). */
export async function loadCheckpoint(dataDir: string, tenant: string, jobId: string): Promise<Checkpoint | null> {
  const root = paths.checkpoints(dataDir, tenant, jobId);
  const newest = (await listSaves(root)).at(-1);
  if (!newest) return null;
  const dir = path.join(root, newest);
  const state = JSON.parse(await fs.readFile(path.join(dir, 'state.json'), 'utf8')) as CheckpointState;
  const model = await loadModelFiles(dir);
  const optimizerWeights = (await readTensors(dir, 'optimizer')) ?? [];
  const bestWeights: Record<string, tf.Tensor[]> = {};
  for (const file of await fs.readdir(dir)) {
    const key = /^best-([a-z_]+)\.json$/.exec(file)?.[1];
    const ws = key ? await readTensors(dir, `best-${key}`) : null;
    if (key && ws) bestWeights[key] = ws.map((w) => w.tensor);
  }
  return { state, model, optimizerWeights, bestWeights: Object.keys(bestWeights).length ? bestWeights : null };
}

export async function removeCheckpoints(dataDir: string, tenant: string, jobId: string): Promise<void> {
  await fs.rm(paths.checkpoints(dataDir, tenant, jobId), { recursive: true, force: true });
}
