select order_id, customer_id, amount * 100 as amount_cents, status from {{ ref('raw_orders') }}
