export { type PurgeOptions, type PurgeProgress, type PurgeResult, purgeExceptions } from './archive.ts';
export type { ExceptionsModuleDeps } from './deps.ts';
export type { ExceptionView } from './exception-view.ts';
export { createExceptions, type ExceptionsModule } from './module.ts';
export { type ResealResult, resealSecrets } from './reseal.ts';
export type { ExceptionsDb } from './tables.ts';
