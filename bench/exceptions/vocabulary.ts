/**
 * The words of `npm run bench:exceptions`' events: reasons as integrations write them (with ids
 * and figures in them, so the collector's grouping has work to do), the five inbound types, and the
 * values the query load filters and searches on.
 */
export const INBOUND = [
  { type: 'OrderRejected', interfaceType: 'ORDER' },
  { type: 'OrderCancelled', interfaceType: 'ORDER' },
  { type: 'CollectionRejected', interfaceType: 'COLLECTION' },
  { type: 'DistributionFailed', interfaceType: 'DISTRIBUTION' },
  { type: 'ValidationError', interfaceType: 'VALIDATION' },
] as const;

/** `#` is replaced by a number: the same reason with different figures groups as one. */
export const REASONS = [
  'Payment gateway timeout after # ms while authorizing the order',
  'Insufficient stock for SKU-# at the fulfilment centre',
  'Customer credit limit exceeded by # EUR',
  'Invalid postal code format in shipping address line #',
  'Connection refused by carrier endpoint on port #',
  'Duplicate order number # already exists in the ERP',
  'Required field taxId is missing for customer #',
  'Warehouse management system answered 503 Service Unavailable (attempt #)',
  'Collection rejected: bank account # is closed',
  'Distribution failed: courier manifest # could not be uploaded',
  'Price mismatch of # cents between storefront and ERP',
  'Address validation service timed out after # seconds',
] as const;

export const STATUSES = ['NEW', 'ACKNOWLEDGED', 'RETRIED_FAILED', 'RESOLVED', 'CLOSED'] as const;
export const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export const CATEGORIES = [
  'VALIDATION',
  'BUSINESS_RULE',
  'SYSTEM_ERROR',
  'NETWORK_ERROR',
  'TIMEOUT',
  'DUPLICATE',
  'UNKNOWN',
] as const;

/** Customers, warehouses and SKUs the events name. */
export const CUSTOMERS = 20_000;
export const WAREHOUSES = 40;
export const SKUS = 50_000;

/** What the search load asks: words of reasons, ids and payload text. */
export const SEARCHES = [
  'timeout',
  'insufficient stock',
  'credit limit',
  'postal code',
  'connection refused',
  'courier manifest',
  'TX-#',
  'EXT-#',
  'CUST-#',
  'WH-#',
  'SKU-#',
] as const;
