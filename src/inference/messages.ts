import type { ArrayColumn, CompiledConfig, ModelSummary, TensorInfo } from '../model-spec/types.ts';

/** Requests the API sends to its tensor thread. */
export type ThreadRequest =
  | { op: 'inspect'; spec: unknown; compile: unknown; limits: { maxLayers: number; maxParams: number } }
  | { op: 'predict'; modelKey: string; dir: string; inputs: ArrayColumn[]; batchSize: number }
  | {
    op: 'import';
    /** A TensorFlow.js model.json (its modelTopology is the spec). */
    spec: unknown;
    compile: unknown;
    limits: { maxLayers: number; maxParams: number };
    weightSpecs: Array<{ name: string; shape: number[]; dtype: string }>;
    weightData: ArrayBuffer;
    /** Where the weights are saved as the model's version 1. */
    dataDir: string;
    versionDir: string;
  };

export interface InspectResult {
  summary: ModelSummary;
  summary_text: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  compile: CompiledConfig | null;
}

export interface PredictResult {
  /** One nested array per model output, [samples, ...outputShape]. */
  outputs: unknown[];
}

export type ThreadResponse =
  | { id: number; ok: true; value: InspectResult | PredictResult }
  | { id: number; ok: false; error: { code: string; message: string; path?: string; details?: Record<string, unknown> } };
