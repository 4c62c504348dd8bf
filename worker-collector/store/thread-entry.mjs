// Worker threads do not inherit `--import tsx` on Node 20, so the store
// thread starts here: register tsx's loader, then load the TypeScript module.
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
