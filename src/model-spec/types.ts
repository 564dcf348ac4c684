/** Shapes shared by the model builder, the compile resolver, the training loop and the API. */

/** A tensor shape without the batch dimension; null where any size fits. */
export type Shape = Array<number | null>;

/** A model input or output as the API reports it. */
export interface TensorInfo {
  name: string;
  shape: Shape;
}

export interface SummaryLayer {
  name: string;
  type: string;
  /** Keras-style output shape with the batch dim as null, e.g. [null, 64]; a list of shapes for several outputs. */
  output_shape: Array<number | null> | Array<Array<number | null>>;
  params: number;
  /** Names of the layers this one is called on (functional models). */
  connected_to?: string[];
}

export interface ModelSummary {
  layers: SummaryLayer[];
  total_params: number;
  trainable_params: number;
  non_trainable_params: number;
}

/** A loss as resolved from compile: a Keras name plus its parameters. */
export interface LossConfig {
  name: string;
  params: Record<string, unknown>;
  /** A custom loss of y_true and y_pred (name is then "expression"). */
  expression?: string;
}

/** A metric for one output; `key` is the history key before any output/val_ prefix ("accuracy", "mse"). */
export interface MetricConfig {
  key: string;
  /** The canonical function name after resolving aliases like "accuracy" -> "sparse_categorical_accuracy". */
  fn: string;
  params: Record<string, unknown>;
  /** A custom metric of y_true and y_pred (fn is then "expression"). */
  expression?: string;
}

/** A Keras LearningRateSchedule, resolved (names snake_case, Keras's defaults filled in). */
export interface ScheduleConfig {
  type: 'exponential_decay' | 'cosine_decay' | 'piecewise_constant';
  params: Record<string, number | boolean | number[] | null>;
}

export interface OptimizerConfig {
  type: string;
  /** learning_rate is the initial rate when `schedule` is given. */
  params: Record<string, number | boolean>;
  /** learning_rate as a schedule of the step (optimizer.iterations). */
  schedule?: ScheduleConfig;
}

/** compile, validated and normalised against the model's outputs (in model output order). */
export interface CompiledConfig {
  optimizer: OptimizerConfig;
  /** One per output, in output order. */
  losses: LossConfig[];
  /** One per output, in output order (1 when not given). */
  loss_weights: number[];
  /** One list per output, in output order. */
  metrics: MetricConfig[][];
}

/** One column of a dataset in memory: per-sample shape and row-major float32 data of samples * prod(shape). */
export interface ArrayColumn {
  shape: number[];
  data: Float32Array;
}
