/**
 * Multi-threaded wasm in Node. tfjs-backend-wasm 4.22 ships three binaries (plain, SIMD,
 * threaded+SIMD). In Node it takes the SIMD one (WebAssembly SIMD validates in Node >= 16) but
 * never the threaded one: its WASM_HAS_MULTITHREAD_SUPPORT flag answers false when IS_NODE
 * (tfjs issue 3830), so `setThreadsCount` alone does nothing. Forcing the flag is not enough
 * either:
 *
 * 1. Emscripten's pthread pool starts `new Worker(URL.createObjectURL(blob))`, and Node's
 *    worker_threads cannot load a blob: URL (ERR_WORKER_PATH). Here the pthread script (tfjs's
 *    own, exported by the package) is written to a file once, made to load the threaded module
 *    from its file in node_modules instead of a Blob, and createObjectURL returns that file's
 *    path for the duration of the backend's init.
 * 2. The XNNPACK thread pool is capped at emscripten_num_logical_cores() / 2 (it assumes two
 *    hyperthreads per core), which in Node is os.cpus().length / 2: 1 on a 2-vCPU machine,
 *    whatever setThreadsCount asked. os.cpus() reports at least 2 x the count asked for during
 *    the init, so the count asked for is the count used.
 *
 * Both patches last only as long as `tf.setBackend('wasm')` runs (the module, its pthread pool
 * and the XNNPACK thread pool are all made in that call).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);

/** How the wasm backend was started. */
export interface WasmThreading {
  /** Threads XNNPACK uses (1: single-threaded). */
  threads: number;
  /** Whether the SIMD instructions are in use (a SIMD binary was loaded). */
  simd: boolean;
  /** The binary loaded: tfjs-backend-wasm(-simd|-threaded-simd).wasm. */
  binary: string;
  /** Why it is not what TF_WASM_THREADS asked for, when it is not. */
  note?: string;
}

/**
 * TF_WASM_THREADS: the XNNPACK threads of the wasm backend. Unset, empty or 1: single-threaded
 * (see docs/engine.md: on 2 cores shared with the API and Redis, a second thread helps big
 * convolutions and hurts small batches). "auto": one per CPU. An integer from 1 to 8 (the
 * binary's pthread pool holds 8).
 */
export function wasmThreadsFromEnv(raw: string | undefined = process.env.TF_WASM_THREADS): number {
  if (raw === undefined || raw.trim() === '') return 1;
  if (raw.trim() === 'auto') return Math.max(1, Math.min(8, os.cpus().length));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`TF_WASM_THREADS=${raw} must be an integer from 1 to 8, or "auto"`);
  return n;
}

/** The pthread script tfjs builds its Blob from, made to load the threaded module from its file. */
function pthreadScriptFile(): string {
  const mainJs = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as { wasmWorkerContents: string };
  const load = 'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}else{var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)}';
  if (!wasmWorkerContents.includes(load)) throw new Error('the pthread script of this tfjs-backend-wasm version is not the one expected (4.22)');
  // As tfjs does before making its Blob: the exported text holds "\n" escapes turned into newlines.
  const source = wasmWorkerContents.replace(/\n/g, '\\n').replace(load, `importScripts(${JSON.stringify(mainJs)});`);
  const hash = crypto.createHash('sha1').update(source).digest('hex').slice(0, 12);
  const file = path.join(os.tmpdir(), `tfjs-wasm-pthread-${hash}.cjs`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.${Date.now()}`;
    fs.writeFileSync(tmp, source);
    fs.renameSync(tmp, file); // atomic: concurrent workers never see half a file
  }
  return file;
}

type Pool = { unusedWorkers: Array<{ unref?: () => void }>; runningWorkers: Array<{ unref?: () => void }> };
type Wasm = { PThread?: Pool; tfjs: { getThreadsCount: () => number } };

/**
 * The pthread workers (8 in the pool, the XNNPACK ones among them running for good) would keep
 * a process alive after its work is done; Emscripten of this build does not unref them in Node.
 */
function unrefPthreads(): void {
  const pool = (tf.findBackend('wasm') as unknown as { wasm?: Wasm } | null)?.wasm?.PThread;
  for (const w of [...(pool?.unusedWorkers ?? []), ...(pool?.runningWorkers ?? [])]) w.unref?.();
}

function describe(requested: number, note?: string): WasmThreading {
  const backend = tf.findBackend('wasm') as unknown as { wasm?: Wasm } | null;
  const threaded = Boolean(backend?.wasm?.PThread);
  const threads = backend?.wasm ? backend.wasm.tfjs.getThreadsCount() : 1;
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const binary = threaded ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  if (!note && threads !== requested) note = `asked for ${requested} thread(s), XNNPACK runs ${threads}`;
  return { threads, simd, binary, ...(note ? { note } : {}) };
}

/**
 * Starts the wasm backend (`tf.setBackend('wasm')`, the package already imported) with `threads`
 * XNNPACK threads. More than one takes the threaded binary; should that fail to start, the
 * single-threaded SIMD binary is started instead (and `note` says why). False when wasm cannot
 * start at all.
 */
export async function startWasmBackend(threads = 1): Promise<{ ok: boolean; threading: WasmThreading }> {
  // Before the first init only: the flags decide which binary loads.
  await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  if (threads <= 1 || tf.findBackend('wasm')) {
    const ok = await tf.setBackend('wasm');
    return { ok, threading: describe(threads) };
  }
  const wasmPackage = require('@tensorflow/tfjs-backend-wasm') as { setThreadsCount: (n: number) => void };
  let script: string;
  try {
    script = pthreadScriptFile();
  } catch (err) {
    const ok = await tf.setBackend('wasm');
    return { ok, threading: describe(threads, `threads unavailable: ${(err as Error).message}`) };
  }
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasmPackage.setThreadsCount(threads);
  URL.createObjectURL = ((obj: Blob) => (obj && obj.type === 'application/javascript' ? script : createObjectURL(obj))) as typeof URL.createObjectURL;
  (os as { cpus: typeof os.cpus }).cpus = () => {
    const list = cpus();
    while (list.length > 0 && list.length < 2 * threads) list.push(list[0]!);
    return list;
  };
  let ok: boolean;
  const warn = console.warn;
  const warnings: string[] = [];
  try {
    // tfjs reports a failed init with console.warn and resolves false: keep the reason.
    console.warn = (...args: unknown[]) => { warnings.push(args.map(String).join(' ')); };
    ok = await tf.setBackend('wasm');
  } finally {
    console.warn = warn;
    URL.createObjectURL = createObjectURL;
    (os as { cpus: typeof os.cpus }).cpus = cpus;
  }
  if (ok) {
    unrefPthreads();
    return { ok, threading: describe(threads) };
  }
  // Fall back to the single-threaded SIMD binary.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasmPackage.setThreadsCount(1);
  ok = await tf.setBackend('wasm');
  const reason = warnings.filter((w) => !w.startsWith('Initialization of backend')).join(' ').split('\n')[0] || 'unknown error';
  return { ok, threading: describe(threads, `the threaded binary failed to start (${reason}); running single-threaded`) };
}
