/**
 * A bench child process: training rates of the bench models, in a process of its own so what
 * it measures is not what the parent installed. The parent runs it with TF_WASM_KERNELS=stock
 * (stock tfjs-wasm: none of src/engine's wasm kernels, fused Adam, shared clones or dense fast
 * path) or TF_WASM_THREADS=2, and BENCH_JOBS, a JSON list of
 * { model, n, backend ('wasm' | 'cpu'), reps?, warmup?, batchSize?, kind? }, kind being
 * 'loop' (the workers' fit loop, default), 'tfjs_path' (the same loop kept off the dense fast
 * path) or 'model_fit' (tfjs-layers' own model.fit; the MLP only). The last stdout line is the
 * JSON result: { backend: BackendInfo, rates: [{ ...job, samples_per_s, runs }] }.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.ts';
import { tfjsFitRate, trainRate, type ModelKey } from './lib.ts';

export type RateKind = 'loop' | 'tfjs_path' | 'model_fit';
interface Job { model: ModelKey; n: number; backend: 'wasm' | 'cpu'; reps?: number; warmup?: number; batchSize?: number; kind?: RateKind }

const jobs = JSON.parse(process.env.BENCH_JOBS ?? '[]') as Job[];
const info = await initBackend('wasm');
const rates: Array<Job & { samples_per_s: number; runs: number[]; error?: string }> = [];
for (const job of jobs) {
  if (!(await tf.setBackend(job.backend))) throw new Error(`backend ${job.backend} did not start`);
  try {
    if (job.kind === 'model_fit') {
      const rate = await tfjsFitRate(job.n, job.batchSize ?? 32, job.reps ?? 1, job.warmup);
      rates.push({ ...job, samples_per_s: rate, runs: [rate] });
    } else {
      const r = await trainRate(job.model, job.n, { reps: job.reps ?? 1, warmup: job.warmup, batchSize: job.batchSize, denseFastPath: job.kind !== 'tfjs_path' });
      rates.push({ ...job, ...r });
    }
  } catch (err) {
    rates.push({ ...job, samples_per_s: NaN, runs: [], error: (err as Error).message.split('\n')[0] });
  }
}
console.log(JSON.stringify({ backend: info, rates }));
process.exit(0);
