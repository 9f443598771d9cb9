// A brand's mobile app acting for one signed-in customer, written as an app team would. Its
// backend exchanges the customer's id for a member token with an API key holding
// `members:token`; the app then uses `/me` only. CI type-checks this file (`npm run check`)
// against the generated types, so the member's views and requests stay usable from TypeScript.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type MemberPoints = components["schemas"]["MemberPoints"];
type MemberRegistration = components["schemas"]["MemberRegistration"];

/** The app's backend: a member token for the customer who signed in to the app. */
export async function memberToken(baseUrl: string, backendKey: string, customerId: string) {
  const backend = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${backendKey}` },
  });
  const { data, error } = await backend.POST("/api/v1/member-tokens", {
    body: { customer_id: customerId },
  });
  if (error || !data) {
    throw new Error(`no member token: ${error?.detail}`);
  }
  return { token: data.access_token, expiresIn: data.expires_in };
}

/** The app: read the points, file a complaint about an order, register for the first event. */
export async function memberFlow(baseUrl: string, memberToken: string, orderId?: string) {
  const app = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${memberToken}` },
  });

  const { data: points } = await app.GET("/api/v1/me/points", {
    params: { query: { limit: 20 } },
  });
  const balance: number | undefined = (points as MemberPoints | undefined)?.balances.balance;

  const { data: complaint, error: refused } = await app.POST("/api/v1/me/complaints", {
    body: {
      category: "product_quality",
      subject: "Sole came off",
      description: "After a week of wear.",
      order_id: orderId,
    },
    params: { header: { "Idempotency-Key": crypto.randomUUID() } },
  });
  if (refused || !complaint) {
    throw new Error(`could not file the complaint: ${refused?.detail}`);
  }
  // The status a customer is told, never the internal one.
  const told: string = complaint.status;

  const { data: events } = await app.GET("/api/v1/me/events");
  let registration: MemberRegistration | undefined;
  const next = events?.data.find((e) => e.registration == null);
  if (next) {
    const { data } = await app.POST("/api/v1/me/events/{id}/registrations", {
      params: { path: { id: next.id } },
    });
    registration = data;
  }

  // Keep the cursor for the next sync: only what changed since comes back.
  const { data: changes } = await app.GET("/api/v1/me/changes", {
    params: { query: { since: "now" } },
  });
  return {
    balance,
    complaintId: complaint.id,
    told,
    waitlisted: registration?.status === "waitlisted",
    cursor: changes?.next_cursor,
  };
}
