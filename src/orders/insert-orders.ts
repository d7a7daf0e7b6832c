import { type Selectable, sql } from 'kysely';
import { type JsonColumn, jsonObjects } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { type NewOrder, type Order, toHistoryEntry, toLine, toOrder } from './order-view.ts';
import type { HistoryTable, LinesTable, OrdersTable, OrdersTrx } from './tables.ts';

// The rows insertOrders sends, as jsonObjects reads them.
const ORDER_COLUMNS: JsonColumn[] = [
  ['id', 'uuid'],
  ['number', 'bigint'],
  ['customer_id', 'uuid'],
  ['email', 'text'],
  ['currency', 'text'],
  ['shipping_address', 'jsonb'],
  ['billing_address', 'jsonb'],
  ['shipping_option', 'jsonb'],
  ['item_count', 'integer'],
  ['subtotal', 'bigint'],
  ['discount', 'bigint'],
  ['shipping', 'bigint'],
  ['tax', 'bigint'],
  ['total', 'bigint'],
  ['tax_rate_bps', 'integer'],
  ['prices_include_tax', 'boolean'],
  ['cart_id', 'uuid'],
  ['idempotency_scope', 'text'],
  ['idempotency_key', 'text'],
  ['request_hash', 'text'],
  ['correlation_id', 'text'],
  ['guest_token_hash', 'text'],
];
const LINE_COLUMNS: JsonColumn[] = [
  ['id', 'uuid'],
  ['order_id', 'uuid'],
  ['variant_id', 'uuid'],
  ['product_id', 'uuid'],
  ['sku', 'text'],
  ['title', 'text'],
  ['variant_title', 'text'],
  ['quantity', 'integer'],
  ['unit_price', 'bigint'],
  ['tax', 'bigint'],
  ['line_total', 'bigint'],
];
const HISTORY_COLUMNS: JsonColumn[] = [
  ['id', 'uuid'],
  ['order_id', 'uuid'],
  ['actor', 'text'],
];

/**
 * Inserts many orders (status created), their lines and first history entries in ONE statement,
 * whatever their number (each part reads its rows from one JSON parameter, jsonObjects); returns
 * the orders in the inputs' order.
 */
export async function insertOrders(
  trx: OrdersTrx,
  tenantId: string,
  inputs: { input: NewOrder; number: number; actor: string }[],
): Promise<Order[]> {
  if (inputs.length === 0) return [];
  const ids = inputs.map(({ input }) => input.id ?? uuidv7());
  const orders = inputs.map(({ input, number }, i) => ({
    id: ids[i],
    number,
    customer_id: input.customerId,
    email: input.email,
    currency: input.currency,
    shipping_address: input.shippingAddress,
    billing_address: input.billingAddress,
    shipping_option: input.shippingOption,
    item_count: input.lines.reduce((sum, line) => sum + line.quantity, 0),
    subtotal: input.totals.subtotal,
    discount: input.totals.discount,
    shipping: input.totals.shipping,
    tax: input.totals.tax,
    total: input.totals.total,
    tax_rate_bps: input.totals.taxRateBps,
    prices_include_tax: input.totals.pricesIncludeTax,
    cart_id: input.cartId,
    idempotency_scope: input.idempotencyScope,
    idempotency_key: input.idempotencyKey,
    request_hash: input.requestHash,
    correlation_id: input.correlationId,
    guest_token_hash: input.guestTokenHash,
  }));
  const lines = inputs.flatMap(({ input }, i) =>
    input.lines.map((line) => ({
      id: uuidv7(),
      order_id: ids[i],
      variant_id: line.variantId,
      product_id: line.productId,
      sku: line.sku,
      title: line.title,
      variant_title: line.variantTitle,
      quantity: line.quantity,
      unit_price: line.unitPrice,
      tax: line.tax,
      line_total: line.lineTotal,
    })),
  );
  const history = inputs.map(({ actor }, i) => ({ id: uuidv7(), order_id: ids[i], actor }));
  const { rows } = await sql<{ orders: unknown; lines: unknown; history: unknown }>`
    with made as (
      insert into orders.orders (id, tenant_id, number, customer_id, email, currency, shipping_address,
        billing_address, shipping_option, item_count, subtotal, discount, shipping, tax, total, tax_rate_bps,
        prices_include_tax, cart_id, idempotency_scope, idempotency_key, request_hash, correlation_id,
        guest_token_hash)
      select v.id, ${tenantId}::uuid, v.number, v.customer_id, v.email, v.currency, v.shipping_address,
        v.billing_address, v.shipping_option, v.item_count, v.subtotal, v.discount, v.shipping, v.tax, v.total,
        v.tax_rate_bps, v.prices_include_tax, v.cart_id, v.idempotency_scope, v.idempotency_key, v.request_hash,
        v.correlation_id, v.guest_token_hash
      from ${jsonObjects(ORDER_COLUMNS, orders)} as v
      returning *
    ), lined as (
      insert into orders.lines (id, tenant_id, order_id, variant_id, product_id, sku, title, variant_title,
        quantity, unit_price, tax, line_total)
      select v.id, ${tenantId}::uuid, v.order_id, v.variant_id, v.product_id, v.sku, v.title, v.variant_title,
        v.quantity, v.unit_price, v.tax, v.line_total
      from ${jsonObjects(LINE_COLUMNS, lines)} as v
      -- the orders first (the lines' foreign key): made is read, so it runs before
      where exists (select 1 from made)
      returning *
    ), logged as (
      insert into orders.history (id, tenant_id, order_id, from_status, to_status, actor, reason)
      select v.id, ${tenantId}::uuid, v.order_id, null, 'created', v.actor, null
      from ${jsonObjects(HISTORY_COLUMNS, history)} as v
      where exists (select 1 from made)
      returning *
    )
    select (select json_agg(made) from made) as orders, (select json_agg(lined) from lined) as lines,
      (select json_agg(logged) from logged) as history`.execute(trx);
  const parse = <T>(value: unknown): T[] =>
    ((typeof value === 'string' ? JSON.parse(value) : value) as T[] | null) ?? [];
  const byId = new Map(parse<Selectable<OrdersTable>>(rows[0]!.orders).map((r) => [r.id, r]));
  const linesOf = new Map<string, Selectable<LinesTable>[]>();
  for (const line of parse<Selectable<LinesTable>>(rows[0]!.lines)) {
    const list = linesOf.get(line.order_id) ?? [];
    list.push(line);
    linesOf.set(line.order_id, list);
  }
  const historyOf = new Map(parse<Selectable<HistoryTable>>(rows[0]!.history).map((h) => [h.order_id, h]));
  return ids.map((id) =>
    toOrder(byId.get(id)!, (linesOf.get(id) ?? []).sort((a, b) => (a.id < b.id ? -1 : 1)).map(toLine), [
      toHistoryEntry(historyOf.get(id)!),
    ]),
  );
}
