/**
 * Helpers for kernels we add to the wasm backend. They work as the backend's own kernels do:
 * on TensorInfos, calling other wasm kernels' functions directly (no engine bookkeeping, no tape
 * entries, works whatever kind of TensorInfo the engine passes), and freeing every intermediate
 * with disposeData. Each TensorInfo a kernel returns owns one reference to its data.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type Info = tf.TensorInfo;
export type Attrs = Record<string, unknown>;
export type KernelArgs = { inputs: Record<string, Info>; backend: BackendWasm; attrs: Attrs };
export type Kernel = (args: KernelArgs) => Info | Info[];

/** The stock wasm kernels, captured before we wrap any, so wrappers and compositions call the originals. */
const stock = new Map<string, tf.KernelConfig | null>();

/** The stock wasm kernel of that name (null: there is none), as first seen: call it before replacing one. */
export function stockKernel(name: string): tf.KernelConfig | undefined {
  if (!stock.has(name)) stock.set(name, tf.getKernel(name, 'wasm') ?? null);
  return stock.get(name) ?? undefined;
}

/** Runs a stock wasm kernel; the caller owns (and must free) what it returns. */
export function runWasm(backend: BackendWasm, name: string, inputs: Record<string, Info>, attrs: Attrs = {}): Info {
  const k = stockKernel(name);
  if (!k) throw new Error(`Kernel '${name}' not registered for backend 'wasm'`);
  return k.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]) as Info;
}

/** Intermediates made in one kernel call, freed together when it ends. */
export class Scope {
  private readonly made = new Set<Info>();
  constructor(readonly backend: BackendWasm) {}

  run(name: string, inputs: Record<string, Info>, attrs: Attrs = {}): Info {
    const out = runWasm(this.backend, name, inputs, attrs);
    this.made.add(out);
    return out;
  }

  reshape(x: Info, shape: number[]): Info {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: Info, perm: number[]): Info {
    return this.run('Transpose', { x }, { perm });
  }

  /** The result leaves the scope; one that is not ours (an input) gets its own reference. */
  keep(info: Info): Info {
    if (this.made.has(info)) this.made.delete(info);
    else this.backend.incRef(info.dataId);
    return info;
  }

  dispose(): void {
    for (const info of this.made) this.backend.disposeData(info.dataId);
    this.made.clear();
  }
}

/** Runs `fn` with a scope and returns its result, every other intermediate freed. */
export function scoped(backend: BackendWasm, fn: (s: Scope) => Info): Info {
  const s = new Scope(backend);
  try {
    return s.keep(fn(s));
  } finally {
    s.dispose();
  }
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes of an NHWC tensor:
 * the compositions below shift windows by padding, and strides can leave rows unused.
 */
export function padOrCrop(s: Scope, x: Info, top: number, bottom: number, left: number, right: number): Info {
  let out = x;
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const t = Math.max(0, -top);
    const l = Math.max(0, -left);
    const size = [n, h - t - Math.max(0, -bottom), w - l - Math.max(0, -right), c];
    out = s.run('Slice', { x: out }, { begin: [0, t, l, 0], size });
  }
  if (top > 0 || bottom > 0 || left > 0 || right > 0) {
    const paddings = [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]];
    out = s.run('PadV2', { x: out }, { paddings, constantValue: 0 });
  }
  return out;
}

/** Registers (or replaces) a wasm kernel, keeping the stock one's setup so it still runs at backend init. */
export function setWasmKernel(name: string, kernelFunc: Kernel): void {
  const prior = stockKernel(name);
  if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc, setupFunc: prior?.setupFunc });
}
