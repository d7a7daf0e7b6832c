-- The order a cart's checkout record belongs to (src/cart/cart-checkout.ts, migration 0067).
--
-- A cart's `checkout_lines` (what an order placed from it takes) was kept when that order failed
-- or was cancelled: a guest whose card was declined then logged in, and the merge held back every
-- unit of the record as taken by a pending order (CHECKED_OUT), so their cart came up without
-- them. The checkout now forgets the record when its order ends failed or cancelled, and only
-- its own order's record (`checkout_order_id`): a later order placed from the same cart, whose
-- record replaced it, keeps its own.
alter table cart.carts add column checkout_order_id uuid;
