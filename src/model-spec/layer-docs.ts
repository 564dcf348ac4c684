/**
 * docs/layers.md's table, generated from the layer registry (a test keeps the file equal to it).
 * Run `node --import tsx src/model-spec/layer-docs.ts > docs/layers.md` after changing the registry.
 */
import { argSpecsOf, camelToSnake, COMMON_ARGS, layerDefs, RNN_CELL_TYPES } from './layer-registry.ts';

const code = (s: string) => `\`${s}\``;

/** One row per layer class: name, other spellings, required arguments, other arguments. */
export function layersTable(): string {
  const rows = layerDefs()
    .slice()
    .sort((a, b) => a.className.localeCompare(b.className))
    .map((def) => {
      const specs = argSpecsOf(def);
      const own = Object.keys(def.args);
      const required = (def.required ?? []).map(camelToSnake);
      const accepted = own.filter((k) => !(def.required ?? []).includes(k) && !specs[k]!.onlyIf).map(camelToSnake);
      const neutral = own.filter((k) => specs[k]!.onlyIf).map((k) => `${camelToSnake(k)} (${specs[k]!.onlyIf!.accepted})`);
      const extra = def.wrapsLayer ? ['layer (the wrapped layer spec)'] : [];
      const aliases = (def.aliases ?? []).map(code).join(', ');
      return `| ${code(def.className)} | ${aliases} | ${[...extra, ...required].map(code).join(', ')} | ${accepted.map(code).join(', ')} | ${neutral.map(code).join(', ')} |`;
    });
  return [
    '| Layer (Keras class) | Also accepted as | Required | Arguments | Accepted only with a neutral value |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/** The whole of docs/layers.md. */
export function layersDoc(): string {
  const common = Object.keys(COMMON_ARGS).map(camelToSnake).map(code).join(', ');
  return `# Layers

Every layer class TensorFlow.js registers is reachable from the native spec by its Keras class
name (\`{"type": "Conv2D", ...}\`, case and underscores ignored: \`"conv2d"\`, \`"max_pooling2d"\`),
with Keras's snake_case arguments (tfjs's camelCase spellings are accepted too), and from Keras
model JSON (\`{"class_name": "Conv2D", "config": {...}}\`; see docs/keras-import.md). Defaults are
Keras's where they differ from tfjs's (\`LSTM\`/\`GRU\` \`recurrent_activation="sigmoid"\`,
\`unit_forget_bias=true\`, \`GRU\` \`reset_after=true\`, \`LeakyReLU\` \`alpha=0.3\`, ...).

Besides the arguments listed, every layer takes ${common}.
\`InputLayer\` takes \`shape\` / \`input_shape\`, \`batch_shape\` / \`batch_input_shape\`, \`batch_size\`,
\`dtype\` (float32 or int32 storage), \`name\`. A \`sequential\` model may be used as a layer. The
\`RNN\` layer takes \`cell\`: one of ${RNN_CELL_TYPES.map(code).join(', ')} (\`{"type": "LSTMCell", "units": 8}\`)
or a list of them (stacked).

Arguments in the last column exist in Keras but not in TensorFlow.js: they are accepted with the
value shown (which gives the same result as leaving them out) and refused otherwise, with the
path of the argument.

Written by this service (tfjs lacks them or differs): \`GRU\` with \`reset_after=true\`,
\`Flatten\` on a 2-D input, \`Normalization\`, \`MultiHeadAttention\`, \`ReLU\` with
\`negative_slope\`/\`threshold\`, \`Subtract\`, and \`Custom\` (a layer written as an expression:
docs/expressions.md).

What cannot be expressed here is refused with a 422 naming the layer and its class: \`Lambda\`
and TensorFlow op layers (\`TFOpLambda\`, \`SlicingOpLambda\`: Python code), and custom Python
classes. Write them as a \`Custom\` expression layer instead.

${layersTable()}
`;
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(layersDoc());
