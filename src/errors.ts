/**
 * Every error code the API answers with, and its HTTP status, in one table.
 * Codes are part of the public contract (API.md): never rename one.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, description: 'The request body, query or params do not match the schema.' },
  INVALID_JSON: { status: 400, description: 'The body is not valid JSON.' },
  PREDICT_INPUT_INVALID: { status: 400, description: 'Predict instances/inputs do not match the model inputs.' },
  UNAUTHORIZED: { status: 401, description: 'No valid API key was given.' },
  NOT_FOUND: { status: 404, description: 'No such resource for this tenant.' },
  ROUTE_NOT_FOUND: { status: 404, description: 'No such route.' },
  JOB_NOT_CANCELLABLE: { status: 409, description: 'The job already finished.' },
  MODEL_HAS_NO_VERSION: { status: 409, description: 'The model has no trained version to use yet.' },
  DATASET_READ_ONLY: { status: 409, description: 'A built-in dataset cannot be changed or deleted.' },
  UPGRADE_REQUIRED: { status: 426, description: 'A WebSocket endpoint was called without a WebSocket upgrade.' },
  PAYLOAD_TOO_LARGE: { status: 413, description: 'The body or a dataset is over a configured limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The Content-Type is not accepted here.' },
  MODEL_SPEC_INVALID: { status: 422, description: 'The model spec does not build.' },
  COMPILE_INVALID: { status: 422, description: 'The compile options (optimizer, loss, metrics, loss_weights) are invalid.' },
  DATASET_INVALID: { status: 422, description: 'The dataset arrays are malformed.' },
  DATASET_MISMATCH: { status: 422, description: 'The dataset does not fit the model inputs or outputs.' },
  FIT_OPTIONS_INVALID: { status: 422, description: 'The fit/evaluate options are invalid.' },
  LIMIT_EXCEEDED: { status: 422, description: 'A model or request is over a configured resource limit.' },
  EXPRESSION_INVALID: { status: 422, description: 'A custom layer, loss, metric or activation expression does not parse or does not fit its tensors.' },
  RATE_LIMITED: { status: 429, description: 'Too many requests.' },
  INTERNAL: { status: 500, description: 'An unexpected server error (details are in the server log).' },
  REDIS_UNAVAILABLE: { status: 503, description: 'Redis is unreachable; retry shortly.' },
  INFERENCE_UNAVAILABLE: { status: 503, description: 'The inference thread is restarting; retry shortly.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error meant for the client: a stable code, a message a person can act on, a path into the request. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly path?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, path?: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    this.path = path;
    this.details = details;
  }
}

/**
 * Thrown by the model-spec, compile and dataset validators. `path` is relative to
 * the request body (e.g. "spec.layers[1].units"); routes turn it into an ApiError.
 */
export class SpecError extends Error {
  readonly path: string;
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(path: string, message: string, code: ErrorCode = 'MODEL_SPEC_INVALID', details?: Record<string, unknown>) {
    super(message);
    this.name = 'SpecError';
    this.path = path;
    this.code = code;
    this.details = details;
  }
}

/** The JSON body of every error answer. */
export function errorBody(code: ErrorCode, message: string, path?: string, details?: Record<string, unknown>) {
  return { error: { code, message, ...(path !== undefined ? { path } : {}), ...(details ? { details } : {}) } };
}
