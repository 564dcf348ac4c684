import type { Redis } from 'ioredis';

/**
 * Runs a fixed Lua script as a named ioredis command (EVALSHA, loaded once per
 * connection). Script texts are constants of this codebase; no user input is ever a script.
 */
export function runLua(redis: Redis, name: string, lua: string, keys: string[], args: Array<string | number>): Promise<unknown> {
  const commands = redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>;
  if (typeof commands[name] !== 'function') redis.defineCommand(name, { numberOfKeys: keys.length, lua });
  return commands[name](...keys, ...args);
}
