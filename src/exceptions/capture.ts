// STUB (helper H1 replaces this file): capture of inbound and Mercato-originated failures.
import type { ExceptionsDeps } from './deps.ts';
import type { ExceptionRow } from './exception-view.ts';
import type { ExceptionsTrx } from './tables.ts';

export type CaptureInput = Record<string, unknown>;

export type Capture = {
  captureMany(trx: ExceptionsTrx, tenantId: string, inputs: CaptureInput[]): Promise<ExceptionRow[]>;
  subscribe(): void;
  start(): void;
  stop(): Promise<void>;
};

export function createCapture(_deps: ExceptionsDeps): Capture {
  return {
    captureMany: async () => [],
    subscribe() {},
    start() {},
    stop: async () => {},
  };
}
