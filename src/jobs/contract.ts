/**
 * The queue contract between the API and the workers: the queue name, the job
 * payload, the job record the API serves, and the Redis keys both sides use.
 */
export const QUEUE_NAME = 'training';

export type JobKind = 'fit' | 'evaluate';
export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const FINISHED: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

/** What BullMQ carries: just enough to find the record, which holds the rest. */
export interface JobPayload {
  jobId: string;
  tenant: string;
  kind: JobKind;
}

export interface FitParams {
  epochs: number;
  batch_size: number;
  validation_split?: number;
  validation_dataset_id?: string;
  shuffle: boolean;
  initial_epoch: number;
  class_weight?: Record<string, number>;
  seed?: number;
  callbacks?: Array<Record<string, unknown>>;
  /** The fit fails as TIMED_OUT past this much training time (over every attempt). */
  max_seconds?: number;
  /** false: ignore the dataset's sample-weight column (default: use it). */
  sample_weight?: boolean;
  /** Keras's steps_per_epoch (batches per epoch over a stream of `epochs` passes). */
  steps_per_epoch?: number;
}

export interface EvaluateParams {
  batch_size: number;
  /** false: ignore the dataset's sample-weight column (default: use it). */
  sample_weight?: boolean;
}

export interface JobError {
  code: string;
  message: string;
}

/** The job record in Redis, as GET /v1/jobs/:id answers it. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  model_id: string;
  dataset_id: string;
  status: JobStatus;
  params: FitParams | EvaluateParams;
  /** compile overrides given with the fit (already validated), or null. */
  compile: unknown;
  progress: { epoch: number; epochs: number } | null;
  history: Record<string, number[]> | null;
  result: Record<string, number> | null;
  error: JobError | null;
  /** The model version the job started from (null: fresh weights). */
  base_version: number | null;
  /** The version a completed fit created. */
  model_version: number | null;
  /** With model_checkpoint(save_best_only): the epoch whose weights became model_version. */
  best_epoch?: number | null;
  /** How a completed fit trained: the dense fast path, or tfjs kernels (and why not the dense path). */
  engine?: { path: 'dense' | 'tfjs'; reason?: string };
  /** What the job did differently from what was asked (OUT_OF_DATA: steps_per_epoch ran past the data). */
  warnings?: JobError[];
  attempts: number;
  worker_id: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** Redis keys shared by the API and workers. */
export const keys = {
  events: (prefix: string, jobId: string) => `${prefix}:events:${jobId}`,
  eventSeq: (prefix: string, jobId: string) => `${prefix}:events-seq:${jobId}`,
  cancel: (prefix: string, jobId: string) => `${prefix}:cancel:${jobId}`,
  worker: (prefix: string, workerId: string) => `${prefix}:worker:${workerId}`,
  workers: (prefix: string) => `${prefix}:workers`,
};

/** BullMQ's own keys live under this prefix. */
export const bullPrefix = (prefix: string) => `${prefix}:bull`;
