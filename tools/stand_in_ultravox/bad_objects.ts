// Call objects the importer must survive (docs/ULTRAVOX.md, "The Call object"): invalid ones it
// cannot store at all, and odd ones it can store with some fields unreadable. Each is a plausible
// call with exactly one defect or oddity, in a fixed rotation, so tests can count them exactly.

import { isoOfMicros, microsOf } from "./time.ts";

/**
 * Objects that cannot be stored: no uuid callId, or no `created` with an offset, or text Postgres
 * refuses. In the order the invalidCalls fault and addInvalidCalls use them; `field` is the field
 * at fault and `reasonStartsWith` how the importer's reason for it starts.
 */
export const INVALID_CALL_DEFECTS = [
  { defect: "missing callId", field: "callId", reasonStartsWith: "callId:" },
  { defect: "created is not a date-time", field: "created", reasonStartsWith: "created:" },
  { defect: "created has no offset", field: "created", reasonStartsWith: "created:" },
  { defect: "callId is not a uuid", field: "callId", reasonStartsWith: "callId:" },
  { defect: "NUL character in a string field", field: "summary", reasonStartsWith: "summary:" },
] as const;

/**
 * Storable calls (uuid callId, `created` with an offset) with one odd `field` each, in the order
 * the oddCalls fault and addOddCalls use them. `unreadable` is what the importer stores as null
 * for it (docs/ARCHITECTURE.md, "What a call needs"): an unknown endReason is odd but readable,
 * since enum-like strings are kept as text whatever their value.
 */
export const ODD_CALL_FIELDS = [
  { oddity: "endReason unknown today", field: "endReason", unreadable: [] },
  {
    oddity: "billedDuration has no s suffix",
    field: "billedDuration",
    unreadable: ["billedDuration"],
  },
  { oddity: "agentId is not a uuid", field: "agentId", unreadable: ["agentId"] },
  { oddity: "metadata has a non-string value", field: "metadata", unreadable: ["metadata"] },
  {
    oddity: "recordingEnabled is not a boolean",
    field: "recordingEnabled",
    unreadable: ["recordingEnabled"],
  },
] as const;

/** An end reason Ultravox does not send today but plausibly will (the enum grew three times). */
export const FUTURE_END_REASON = "transferred";

/** Where the invalidCalls fault puts its objects when it has no neighbour to borrow from. */
export const DEFAULT_BAD_CREATED = "2026-10-01T12:00:00.000001Z";

/** The `serial`-th invalid object (from 0), listed at `created`. */
export function invalidCall(
  serial: number,
  created = DEFAULT_BAD_CREATED,
): Record<string, unknown> {
  const n = String(serial + 1).padStart(12, "0");
  const call = plainCall(`badca11d-0000-4000-8000-${n}`, created);
  const { defect } = INVALID_CALL_DEFECTS[serial % INVALID_CALL_DEFECTS.length];
  if (defect === "missing callId") delete call.callId;
  if (defect === "created is not a date-time") call.created = "yesterday";
  if (defect === "created has no offset") call.created = String(call.created).slice(0, -1);
  if (defect === "callId is not a uuid") call.callId = `call-${n}`;
  if (defect === "NUL character in a string field") {
    call.summary = "The caller said \u0000 and hung up.";
  }
  return call;
}

/** The `serial`-th odd call (from 0) at `created`. */
export function oddCall(serial: number, created = DEFAULT_BAD_CREATED): Record<string, unknown> {
  const n = String(serial + 1).padStart(12, "0");
  const call = plainCall(`0ddca11d-0000-4000-8000-${n}`, created);
  const { oddity } = ODD_CALL_FIELDS[serial % ODD_CALL_FIELDS.length];
  if (oddity === "endReason unknown today") call.endReason = FUTURE_END_REASON;
  if (oddity === "billedDuration has no s suffix") call.billedDuration = "61";
  if (oddity === "agentId is not a uuid") call.agentId = `agent-legacy-${serial + 1}`;
  if (oddity === "metadata has a non-string value") call.metadata = { source: "web", attempt: 2 };
  if (oddity === "recordingEnabled is not a boolean") call.recordingEnabled = "yes";
  return call;
}

/** A valid, ended, billed call of a minute at `created` (in six-digit UTC form). */
function plainCall(callId: string, created: string): Record<string, unknown> {
  const micros = microsOf(created);
  if (micros === null) throw new Error(`bad created ${created}`);
  return {
    callId,
    created: isoOfMicros(micros),
    joined: isoOfMicros(micros + 500_000n),
    ended: isoOfMicros(micros + 60_500_000n),
    endReason: "hangup",
    billedDuration: "61s",
    billingStatus: "BILLING_STATUS_BILLED",
    shortSummary: null,
    summary: null,
    agent: null,
    agentId: null,
    metadata: {},
    recordingEnabled: false,
  };
}
