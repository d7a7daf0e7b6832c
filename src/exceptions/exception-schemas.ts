import { type Static, Type } from 'typebox';
import { Nullable, SECURED } from '../platform/http/index.ts';
import { SORTS } from './exception-queries.ts';
import { ExceptionSchema } from './exception-view.ts';
import { FilterBody, FilterProperties } from './filters.ts';
import { CATEGORIES, INTERFACE_TYPES, SEVERITIES, STATUSES } from './tables.ts';

/** FastifySchema's security shape: an operator's or admin's token, or an API key with the permission. */
export const SECURITY = SECURED as Record<string, string[]>[];

const Time = Type.String({ format: 'date-time' });
const Note = Type.String({
  minLength: 1,
  maxLength: 4000,
  description: "The operator's note, kept with the change",
});

const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 400, description: 'The nextCursor of the previous page' }),
  ),
};

export const ListQuery = Type.Object(
  {
    ...FilterProperties,
    ...PageQuery,
    sort: Type.Optional(
      Type.Enum(SORTS, {
        description: 'Sort key, `-` for descending; ties newest id first (Default: -lastSeen)',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ExceptionPage = Type.Object({
  items: Type.Array(ExceptionSchema),
  nextCursor: Nullable(Type.String()),
});

export const SearchQuery = Type.Object(
  {
    q: Type.String({
      minLength: 1,
      maxLength: 200,
      pattern: '\\S',
      description:
        'Words as a web search engine takes them: "a phrase", or, -excluded. Finds reason words (stemmed: timeouts finds timeout), ids (transaction, external, order), customer and location, and the payload\'s text',
    }),
    sort: Type.Optional(
      Type.Enum(['newest', 'relevance'], {
        description:
          'newest: every match, last seen newest first (Default). relevance: the newest 200 matches ranked by where the words are (ids over the reason over the payload), then newest',
      }),
    ),
    ...FilterProperties,
    ...PageQuery,
  },
  { additionalProperties: false },
);

export const SearchPageSchema = Type.Object({
  items: Type.Array(Type.Object({ ...ExceptionSchema.properties, rank: Type.Number() })),
  nextCursor: Nullable(Type.String()),
  truncated: Type.Boolean({
    description:
      'sort=relevance only: more matches exist than the newest 200 ranked (narrow the words or the time range). Always false newest first: the pages reach every match',
  }),
});

export const SummaryQuery = Type.Object(
  {
    ...FilterProperties,
    bucket: Type.Optional(
      Type.Enum(['hour', 'day'], { description: 'Time bucket, UTC (Default: hour up to 2 days, else day)' }),
    ),
  },
  { additionalProperties: false },
);

const countsOf = (keys: readonly string[]) =>
  Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])), { additionalProperties: false });

export const SummarySchema = Type.Object({
  from: Time,
  to: Time,
  bucket: Type.Enum(['hour', 'day']),
  total: Type.Integer({ description: 'Exceptions last seen in the range (and matching the filter)' }),
  byInterfaceType: countsOf(INTERFACE_TYPES),
  bySeverity: countsOf(SEVERITIES),
  byStatus: countsOf(STATUSES),
  byCategory: countsOf(CATEGORIES),
  buckets: Type.Array(Type.Object({ start: Time, count: Type.Integer() }), {
    description: 'Every bucket of the range, oldest first, by last seen',
  }),
  oldestOpen: Nullable(
    Type.Object({
      transactionId: Type.String(),
      status: Type.String(),
      severity: Type.String(),
      firstSeen: Time,
      ageSeconds: Type.Integer(),
    }),
  ),
  meanTimeToResolveSeconds: Nullable(Type.Number({ description: 'Of those resolved in the range' })),
  resolved: Type.Integer({ description: 'Exceptions resolved in the range (and matching the filter)' }),
});

export const TransactionParams = Type.Object({
  transactionId: Type.String({ minLength: 1, maxLength: 200, description: 'URL-encoded; any characters' }),
});

const RetryView = Type.Object({
  attempt: Type.Integer(),
  action: Type.String(),
  status: Type.String(),
  outcome: Nullable(Type.String()),
  requestedBy: Type.String(),
  startedAt: Time,
  finishedAt: Nullable(Time),
});

const AuditView = Type.Object({
  action: Type.String(),
  actor: Type.String(),
  note: Nullable(Type.String()),
  details: Nullable(Type.Object({}, { additionalProperties: true })),
  at: Time,
});

export const DetailSchema = Type.Object({
  ...ExceptionSchema.properties,
  payload: Type.Unknown({ description: 'From its source (cached), else as it arrived; null when none' }),
  payloadFrom: Type.Enum(['source', 'dead-letter', 'event', 'cache', 'none']),
  payloadError: Nullable(Type.String({ description: 'Why the source gave nothing; the rest still answers' })),
  retries: Type.Array(RetryView, { description: 'Newest first' }),
  audit: Type.Array(AuditView, { description: 'Oldest first (the latest 500)' }),
});

export const AcknowledgeBody = Type.Object({ note: Type.Optional(Note) }, { additionalProperties: false });
export const CloseBody = AcknowledgeBody;

const Resolution = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '\\S',
  description: 'How it ended, for example fixed, wont_fix, duplicate, retried',
});

export const ResolveBody = Type.Object(
  { resolution: Resolution, note: Type.Optional(Note) },
  { additionalProperties: false },
);

export const BulkBody = Type.Object(
  {
    action: Type.Enum(['acknowledge', 'resolve', 'retry']),
    filter: Type.Optional(FilterBody),
    all: Type.Optional(
      Type.Literal(true, { description: 'Act on every exception: needed when the filter is empty' }),
    ),
    note: Type.Optional(Note),
    resolution: Type.Optional(Resolution),
  },
  { additionalProperties: false },
);
export type BulkBodyType = Static<typeof BulkBody>;

export const BulkResultSchema = Type.Object({
  matched: Type.Integer(),
  changed: Type.Integer(),
  skipped: Type.Integer({ description: 'Already in that state, or in one the action cannot leave' }),
  failed: Type.Optional(Type.Integer({ description: 'Retries that failed (retry only)' })),
  truncated: Type.Boolean({
    description: 'More matched than one call takes on (10,000; retry: 100): call again',
  }),
  failures: Type.Optional(
    Type.Array(Type.Object({ transactionId: Type.String(), code: Type.String() }), {
      description: 'The retries that failed, and why (retry only)',
    }),
  ),
});
