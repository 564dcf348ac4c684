/**
 * Cheaper tensor clones on wasm while a gradient tape records. For every kernel it records,
 * tfjs-core's engine saves the tensors the gradient will need as clones
 * (saveTensorsForBackwardMode -> engine.clone), and each clone runs the Identity kernel, which on
 * wasm allocates and copies the data: about 40 extra kernel dispatches and copies per training
 * step of a two-layer MLP (a fifth of its kernels). tfjs tensors are immutable (no kernel writes
 * its inputs; variables swap their data on assign), so a clone can share the data instead, as
 * the cpu backend's Identity, Reshape and engine.incRef do: one more reference on the wasm
 * data, a new tensor over it, and the same tape node engine.clone records.
 *
 * Only for tensors whose data is on the wasm backend; anything else takes tfjs's own clone.
 */
import * as tf from '@tensorflow/tfjs';

type Engine = {
  backend: { incRef: (dataId: object) => void };
  backendName: string;
  state: { activeScope: { name: string }; tensorInfo: Map<object, { backend: unknown }> };
  makeTensorFromTensorInfo: (info: tf.TensorInfo, backend?: unknown) => tf.Tensor;
  addTapeNode: (name: string, inputs: tf.NamedTensorMap, outputs: tf.Tensor[], grad: (dy: tf.Tensor) => Record<string, () => tf.Tensor>, saved: tf.Tensor[], attrs: object) => void;
  clone: (x: tf.Tensor) => tf.Tensor;
};

let stockClone: ((this: Engine, x: tf.Tensor) => tf.Tensor) | undefined;

function sharedClone(this: Engine, x: tf.Tensor): tf.Tensor {
  const info = this.state.tensorInfo.get(x.dataId);
  if (this.backendName !== 'wasm' || !info || info.backend !== this.backend || x.dtype === 'string') return stockClone!.call(this, x);
  this.backend.incRef(x.dataId);
  const y = this.makeTensorFromTensorInfo({ dataId: x.dataId, shape: x.shape, dtype: x.dtype }, this.backend);
  // The tape node engine.clone records (its gradient is a cast of dy to float32).
  const grad = (dy: tf.Tensor) => ({ x: () => tf.engine().runKernel('Cast', { x: dy }, { dtype: 'float32' }) as tf.Tensor });
  this.addTapeNode(this.state.activeScope.name, { x }, [y], grad, [], {});
  return y;
}

/** Engine clones of wasm tensors share their data from now on (idempotent). */
export function installSharedClone(): void {
  if (stockClone) return;
  const engine = tf.engine() as unknown as Engine;
  stockClone = engine.clone;
  engine.clone = sharedClone;
}

/** tfjs's own clone again. */
export function uninstallSharedClone(): void {
  if (!stockClone) return;
  (tf.engine() as unknown as Engine).clone = stockClone;
  stockClone = undefined;
}
