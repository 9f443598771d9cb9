// A shop's integration, written as a client team would: the types are generated from
// Rapport's OpenAPI document by openapi-typescript with its default options, the calls made
// with openapi-fetch. CI type-checks this file (`npm run check`), so a document change that
// breaks such a client (a field becoming required, a path renamed) fails the build.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

export async function recordFirstOrder(baseUrl: string, apiKey: string) {
  const client = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${apiKey}` },
  });

  // Only the required fields: a kind and a name.
  const { data: customer, error } = await client.POST("/api/v1/customers", {
    body: { kind: "person", display_name: "Wang Li" },
    params: { header: { "Idempotency-Key": crypto.randomUUID() } },
  });
  if (error || !customer) {
    throw new Error(`could not create the customer: ${error?.detail}`);
  }

  const { data: order } = await client.POST("/api/v1/orders", {
    body: {
      source: "webshop",
      external_id: "10045",
      customer: { id: customer.id },
      currency: "CNY",
      status: "paid",
      lines: [{ sku: "SH-4021-42", name: "Leather loafer", quantity: 1, unit_price_minor: 12500 }],
      total_minor: 12500,
      ordered_at: new Date().toISOString(),
    },
  });
  const spent: number | undefined = order?.total.amount_minor;
  return { customerId: customer.id, spent };
}
