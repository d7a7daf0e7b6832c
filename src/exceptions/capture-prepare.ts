import { cutText } from '../platform/text.ts';
import type { CaptureInput } from './capture.ts';
import { type Classification, classify, loadRules } from './classify.ts';
import { fingerprint, normalizeReason } from './fingerprint.ts';
import type { ExceptionsTrx } from './tables.ts';

/** A time as PostgreSQL reads it: a string is kept (a dead letter's death carries microseconds). */
const iso = (value: Date | string) => (typeof value === 'string' ? value : value.toISOString());

/** One exception to write: the last report of its transaction id in the batch, counted `n` times. */
export type Pending = {
  input: CaptureInput;
  classification: Classification & { rule: string | null };
  fingerprint: string;
  normalized: string;
  n: number;
  firstSeen: string;
  lastSeen: string;
  reports: CaptureInput[];
};

/** The batch's reports, one Pending per transaction id (several reports of one id count each). */
export async function prepare(trx: ExceptionsTrx, inputs: CaptureInput[]): Promise<Map<string, Pending>> {
  const rules = await loadRules(trx);
  const now = new Date().toISOString();
  const byTx = new Map<string, Pending>();
  for (const raw of inputs) {
    const input = {
      ...raw,
      transactionId: cutText(raw.transactionId, 200),
      reason: cutText(raw.reason, 4000) || 'no reason given',
    };
    const classification = classify(input, rules, input.preset);
    const normalized = normalizeReason(input.reason);
    const seen = input.seenAt === undefined ? now : iso(input.seenAt);
    const known = byTx.get(input.transactionId);
    const reports = known?.reports ?? [];
    reports.push(input);
    byTx.set(input.transactionId, {
      input,
      classification,
      normalized,
      fingerprint: fingerprint(input.interfaceType, classification.category, normalized),
      n: (known?.n ?? 0) + 1,
      firstSeen: known && known.firstSeen < seen ? known.firstSeen : seen,
      lastSeen: known && known.lastSeen > seen ? known.lastSeen : seen,
      reports,
    });
  }
  return byTx;
}
