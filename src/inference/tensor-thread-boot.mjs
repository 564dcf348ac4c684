// Entry of the tensor thread: Node 20 workers do not get tsx's loader for a .ts entry
// from --import, so register it here, then load the TypeScript module.
import { register } from 'tsx/esm/api';

register();
await import('./tensor-thread.ts');
