import { Worker } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import { ApiError, type ErrorCode } from '../errors.ts';
import type { ThreadRequest, ThreadResponse, InspectResult, PredictResult } from './messages.ts';

/**
 * The API side of the tensor thread: request/response over postMessage, one
 * request at a time in the thread (tfjs is single-threaded anyway), restarted
 * when it dies, with the pending requests failed as 503.
 */
export class TensorClient {
  private worker?: Worker;
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closed = false;

  constructor(private readonly opts: { tfBackend?: string; cacheSize: number; log: FastifyBaseLogger }) {}

  private start(): Worker {
    const worker = new Worker(new URL('./tensor-thread-boot.mjs', import.meta.url), {
      workerData: { tfBackend: this.opts.tfBackend, cacheSize: this.opts.cacheSize },
    });
    worker.on('message', (res: ThreadResponse) => {
      const waiter = this.pending.get(res.id);
      if (!waiter) return;
      this.pending.delete(res.id);
      if (res.ok) waiter.resolve(res.value);
      else if (res.error.code === 'INTERNAL') {
        this.opts.log.error({ err: res.error }, 'tensor thread failed a request');
        waiter.reject(new Error(res.error.message));
      } else waiter.reject(new ApiError(res.error.code as ErrorCode, res.error.message, res.error.path, res.error.details));
    });
    worker.on('error', (err) => this.opts.log.error({ err }, 'tensor thread crashed'));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiter of this.pending.values()) waiter.reject(new ApiError('INFERENCE_UNAVAILABLE', `the tensor thread stopped (exit ${code}); retry the request`));
      this.pending.clear();
    });
    worker.unref();
    return worker;
  }

  private request<T>(req: ThreadRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new ApiError('INFERENCE_UNAVAILABLE', 'the server is shutting down'));
    this.worker ??= this.start();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker!.postMessage({ id, req }, transfer);
    });
  }

  /** Starts the thread ahead of the first request (loading tfjs and its backend takes a second or two). */
  warm(): void {
    if (!this.closed) this.worker ??= this.start();
  }

  /** Builds the model spec and resolves compile, without training: validation and summary. */
  inspect(spec: unknown, compile: unknown, limits: { maxLayers: number; maxParams: number }): Promise<InspectResult> {
    return this.request({ op: 'inspect', spec, compile, limits });
  }

  /** Builds a TensorFlow.js model.json with its weights and saves them as version 1 (import). */
  importModel(req: Omit<Extract<ThreadRequest, { op: 'import' }>, 'op'>): Promise<InspectResult> {
    return this.request({ op: 'import', ...req }, [req.weightData]);
  }

  predict(req: Omit<Extract<ThreadRequest, { op: 'predict' }>, 'op'>): Promise<PredictResult> {
    return this.request({ op: 'predict', ...req }, req.inputs.map((c) => c.data.buffer as ArrayBuffer));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker?.terminate();
    this.worker = undefined;
  }
}
