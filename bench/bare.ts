/**
 * A bench child process: training rates of the bench models through the bare fit loop, in a
 * process of its own so what it measures is not what the parent installed. The parent runs it
 * with TF_WASM_KERNELS=stock (stock tfjs-wasm: none of src/engine's wasm kernels, fused Adam or
 * shared clones) or TF_WASM_THREADS=2, and BENCH_JOBS, a JSON list of
 * { model, n, backend ('wasm' | 'cpu'), reps?, warmup?, batchSize? }. The last stdout line is
 * the JSON result: { backend: BackendInfo, rates: [{ ...job, samples_per_s, runs }] }.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.ts';
import { trainRate, type ModelKey } from './lib.ts';

interface Job { model: ModelKey; n: number; backend: 'wasm' | 'cpu'; reps?: number; warmup?: number; batchSize?: number }

const jobs = JSON.parse(process.env.BENCH_JOBS ?? '[]') as Job[];
const info = await initBackend('wasm');
const rates: Array<Job & { samples_per_s: number; runs: number[]; error?: string }> = [];
for (const job of jobs) {
  if (!(await tf.setBackend(job.backend))) throw new Error(`backend ${job.backend} did not start`);
  try {
    const r = await trainRate(job.model, job.n, { reps: job.reps ?? 1, warmup: job.warmup, batchSize: job.batchSize });
    rates.push({ ...job, ...r });
  } catch (err) {
    rates.push({ ...job, samples_per_s: NaN, runs: [], error: (err as Error).message.split('\n')[0] });
  }
}
console.log(JSON.stringify({ backend: info, rates }));
process.exit(0);
