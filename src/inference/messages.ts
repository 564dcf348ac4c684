import type { ArrayColumn, CompiledConfig, ModelSummary, TensorInfo } from '../model-spec/types.ts';

/** Requests the API sends to its tensor thread. */
export type ThreadRequest =
  | { op: 'inspect'; spec: unknown; compile: unknown; limits: { maxLayers: number; maxParams: number } }
  | { op: 'predict'; modelKey: string; dir: string; inputs: ArrayColumn[]; batchSize: number };

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
