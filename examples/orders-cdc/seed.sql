-- The example's table, with three orders to start from.
CREATE TABLE IF NOT EXISTS public.orders (
  id       serial PRIMARY KEY,
  customer text NOT NULL,
  total    numeric(10, 2) NOT NULL,
  status   text NOT NULL DEFAULT 'new'
);
INSERT INTO public.orders (customer, total) VALUES ('ann', 12.50), ('ben', 99.99), ('chloe', 5.00);
