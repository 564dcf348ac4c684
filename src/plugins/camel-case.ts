import fp from 'fastify-plugin';

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Renames camelCase keys of an object to snake_case (only the top level; values untouched). */
function snakeKeys(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const name = snake(key);
    out[name in obj && name !== key ? key : name] = value;
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * API.md accepts Keras arguments in tfjs's camelCase too (`batchSize`, `validationSplit`,
 * `lossWeights`). Request bodies are renamed to snake_case before validation: the top
 * level, `compile`, and each callback. Data keyed by input or output names (`x`, `y`,
 * `loss`, `inputs`) keep their keys; layer arguments are handled by the model builder.
 */
export default fp(
  async (app) => {
    app.addHook('preValidation', async (req) => {
      if (!isPlainObject(req.body)) return;
      const body = snakeKeys(req.body);
      if (isPlainObject(body.compile)) body.compile = snakeKeys(body.compile);
      if (Array.isArray(body.callbacks)) body.callbacks = body.callbacks.map((cb) => (isPlainObject(cb) ? snakeKeys(cb) : cb));
      req.body = body;
    });
  },
  { name: 'camel-case' },
);
