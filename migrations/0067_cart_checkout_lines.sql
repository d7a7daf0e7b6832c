-- What a checkout took from a cart (src/cart/cart-checkout.ts).
--
-- An order's cart was deleted whole when the order completed, which for a pending payment (a 3-D
-- Secure redirect) can be minutes after it was placed: whatever the shopper added meanwhile, or
-- merged into it at login, went with it. The checkout's read of the cart now records, in the
-- transaction that creates the order, the quantity of each line it ordered (line id -> units);
-- completing the order takes those units out of their lines and deletes the cart only when
-- nothing else is left. NULL: no checkout read the cart (a cart without it is deleted whole).
alter table cart.carts add column checkout_lines jsonb
  check (checkout_lines is null or jsonb_typeof(checkout_lines) = 'object');
