// Realistic Ultravox accounts for tests and benchmarks, the same for the same seed.
//
// Shapes follow docs/ULTRAVOX.md: microsecond UTC timestamps, "27s"-style durations, every
// end reason (unjoined calls have no joined, billedDuration or summaries), some calls without an
// agent, config fields echoed back that the importer only keeps in `raw`. With `quirks`, also
// what the vendor warns about: calls still running, end reasons newer than the importer knows,
// unknown fields, an agentId that is not a uuid, auto_delete retention.

import { FUTURE_END_REASON } from "./bad_objects.ts";
import type { FakeCall } from "./server.ts";

export interface AccountOptions {
  seed: number;
  count: number;
  /** Calls are spread over the `days` before `end`. */
  days?: number;
  end?: string;
  agents?: number;
  /**
   * The newest 0.5% of the calls (at least one) still running (ended null, billing pending),
   * and among the others about 1% with FUTURE_END_REASON, 1% with an agentId that is not a
   * uuid (and no agent), 5% with fields the schema does not list, 3% with
   * `retentionPolicy: "auto_delete"`. Drawn from a PRNG of their own, so the calls are
   * otherwise those of the same seed without quirks.
   */
  quirks?: boolean;
}

/** An Ultravox-shaped API key: 8 characters, a dot, 32 characters; from `rand` if given. */
export function fakeKey(rand?: () => number): string {
  const draw = rand ?? (() => crypto.getRandomValues(new Uint32Array(1))[0] / 2 ** 32);
  const chars = Array.from({ length: 40 }, () => KEY_CHARS[Math.floor(draw() * KEY_CHARS.length)])
    .join("");
  return `${chars.slice(0, 8)}.${chars.slice(8)}`;
}

const KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export const END_REASONS = [
  "hangup",
  "agent_hangup",
  "unjoined",
  "timeout",
  "connection_error",
  "system_error",
  null, // still in progress
] as const;

/** Seeded PRNG (mulberry32): uniform in [0, 1), 32 bits of state. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A v4-shaped uuid drawn from `rand`. */
export function uuidFrom(rand: () => number): string {
  let hex = "";
  for (let i = 0; i < 4; i++) hex += Math.floor(rand() * 2 ** 32).toString(16).padStart(8, "0");
  const variant = (8 + Math.floor(rand() * 4)).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${
    hex.slice(17, 20)
  }-${hex.slice(20, 32)}`;
}

/** Microseconds since the epoch → "2026-10-31T23:59:59.999999Z" (always six digits). */
export function isoFromMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const fraction = String(micros - Math.floor(micros / 1_000_000) * 1_000_000).padStart(6, "0");
  return new Date(ms).toISOString().slice(0, 19) + "." + fraction + "Z";
}

/** Calls newest first, as Ultravox lists them. About 1% share a `created` with another call. */
export function generateAccount(opts: AccountOptions): FakeCall[] {
  const { seed, count, days = 90, end = "2026-11-01T00:00:00Z", agents = 5 } = opts;
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const endMicros = Date.parse(end) * 1000;
  const spanMicros = days * 86_400_000_000;
  const agentList = Array.from({ length: agents }, (_, i) => ({
    agentId: uuidFrom(rand),
    name: AGENT_NAMES[i % AGENT_NAMES.length] + (i >= AGENT_NAMES.length ? ` ${i}` : ""),
  }));
  // Every end reason appears once among the first calls drawn, then by weight.
  const reasons = Array.from(
    { length: count },
    (_, i) => i < END_REASONS.length ? END_REASONS[i] : weightedReason(rand()),
  );

  const calls: Drawn[] = [];
  for (let i = 0; i < count; i++) {
    // 53 random bits, so every microsecond of the span can come up.
    const offset = (Math.floor(rand() * 2 ** 21) * 2 ** 32 + Math.floor(rand() * 2 ** 32)) %
      spanMicros;
    const tie = i > 0 && rand() < 0.01;
    const createdMicros = tie ? calls[i - 1].createdMicros : endMicros - 1 - offset;
    calls.push({ createdMicros, call: makeCall(rand, pick, createdMicros, reasons[i], agentList) });
  }
  // Ultravox's order: newest first, ties broken by callId, descending.
  calls.sort((a, b) =>
    b.createdMicros - a.createdMicros ||
    (a.call.callId < b.call.callId ? 1 : a.call.callId > b.call.callId ? -1 : 0)
  );
  const result = calls.map((c) => c.call);
  if (opts.quirks) addQuirks(result, mulberry32(seed ^ 0x5eed_0dd5));
  return result;
}

function addQuirks(calls: FakeCall[], rand: () => number): void {
  const running = Math.max(1, Math.round(calls.length * 0.005));
  calls.forEach((call, i) => {
    if (i < running) {
      Object.assign(call, {
        ended: null,
        endReason: null,
        billedDuration: null,
        billingStatus: "BILLING_STATUS_PENDING",
        shortSummary: null,
        summary: null,
      });
    } else {
      const r = rand();
      if (r < 0.01 && call.joined !== null && call.endReason !== null) {
        call.endReason = FUTURE_END_REASON;
      } else if (r < 0.02 && call.agentId !== null) {
        call.agentId = `agent-legacy-${Math.floor(rand() * 1000)}`;
        call.agent = null;
      }
    }
    if (rand() < 0.05) {
      call.callStageCount = 1 + Math.floor(rand() * 3);
      call.vadProvider = { name: "silero", version: "5" };
    }
    if (rand() < 0.03) call.retentionPolicy = "auto_delete";
  });
}

interface Drawn {
  createdMicros: number;
  call: FakeCall;
}

function weightedReason(r: number): typeof END_REASONS[number] {
  if (r < 0.42) return "hangup";
  if (r < 0.72) return "agent_hangup";
  if (r < 0.84) return "unjoined";
  if (r < 0.91) return "timeout";
  if (r < 0.95) return "connection_error";
  if (r < 0.98) return "system_error";
  return null;
}

function makeCall(
  rand: () => number,
  pick: <T>(xs: readonly T[]) => T,
  createdMicros: number,
  endReason: typeof END_REASONS[number],
  agents: { agentId: string; name: string }[],
): FakeCall {
  const callId = uuidFrom(rand);
  const agent = rand() < 0.15 ? null : pick(agents);
  const joinTimeoutS = 30;
  const maxDurationS = pick([480, 900, 3600]);
  let joined: number | null = createdMicros + 150_000 + Math.floor(rand() * 2_500_000);
  let ended: number | null;
  let billedDuration: string | null = null;
  let billingStatus: string;
  let withSummary = true;

  if (endReason === "unjoined") {
    joined = null;
    ended = createdMicros + joinTimeoutS * 1_000_000 + Math.floor(rand() * 400_000);
    billingStatus = "BILLING_STATUS_FREE_ZERO_EFFECTIVE_DURATION";
    withSummary = false;
  } else if (endReason === null) {
    ended = null;
    billingStatus = "BILLING_STATUS_PENDING";
    withSummary = false;
  } else {
    const seconds = endReason === "timeout"
      ? maxDurationS
      : endReason === "connection_error" || endReason === "system_error"
      ? rand() * 20
      : 5 + rand() * 600;
    const durationMicros = Math.max(1, Math.floor(seconds * 1_000_000));
    ended = joined + durationMicros;
    // Short calls are billed to the millisecond, longer ones rounded up to whole seconds.
    billedDuration = durationMicros < 1_000_000
      ? `${(Math.ceil(durationMicros / 1000) / 1000).toFixed(3).replace(/\.?0+$/, "")}s`
      : `${Math.ceil(durationMicros / 1_000_000)}s`;
    billingStatus = endReason === "system_error"
      ? "BILLING_STATUS_FREE_SYSTEM_ERROR"
      : pick(["BILLING_STATUS_BILLED", "BILLING_STATUS_BILLED", "BILLING_STATUS_FREE_MINUTES"]);
    withSummary = durationMicros > 3_000_000;
  }

  const topic = pick(TOPICS);
  const metadata: Record<string, string> = rand() < 0.3 ? {} : {
    source: pick(["web", "phone", "widget", "api"]),
    ...(rand() < 0.5 ? { campaign: pick(["spring-promo", "renewals", "onboarding"]) } : {}),
    ...(rand() < 0.4 ? { customerId: `cus_${Math.floor(rand() * 1e8)}` } : {}),
  };
  return {
    callId,
    clientVersion: null,
    created: isoFromMicros(createdMicros),
    joined: joined === null ? null : isoFromMicros(joined),
    ended: ended === null ? null : isoFromMicros(ended),
    endReason,
    billedDuration,
    billingStatus,
    firstSpeaker: "FIRST_SPEAKER_AGENT",
    firstSpeakerSettings: { agent: {} },
    initialOutputMedium: "MESSAGE_MEDIUM_VOICE",
    joinUrl: null,
    shortSummary: withSummary ? `Caller asked about ${topic}.` : null,
    summary: withSummary
      ? `The caller asked about ${topic}. The agent answered and offered a follow-up by email.`
      : null,
    agent: agent === null ? null : { ...agent },
    agentId: agent?.agentId ?? null,
    experimentalSettings: null,
    metadata,
    initialState: {},
    requestContext: null,
    dataConnectionConfig: null,
    callbacks: {},
    sipDetails: null,
    systemPrompt: `You are a helpful assistant for ${agent?.name ?? "Acme"}.`,
    temperature: pick([0, 0.2, 0.4]),
    model: pick(["ultravox-v0.7", "ultravox-v0.6", "fixie-ai/ultravox"]),
    voice: pick(["Mark", "Jessica", "Emily-English"]),
    externalVoice: null,
    languageHint: pick(["en-US", "en", "es"]),
    timeExceededMessage: null,
    inactivityMessages: [],
    medium: pick([{ webRtc: {} }, { twilio: {} }, { plivo: {} }, { sip: {} }]),
    recordingEnabled: rand() < 0.6,
    transcriptOptional: true,
    maxDuration: `${maxDurationS}s`,
    joinTimeout: `${joinTimeoutS}s`,
    vadSettings: null,
  };
}

const AGENT_NAMES = ["Support", "Sales", "Booking", "Billing", "Front desk", "After hours"];
const TOPICS = [
  "pricing",
  "an appointment",
  "a refund",
  "opening hours",
  "a delivery",
  "their invoice",
  "a password reset",
];

/** A bare, never-joined call at `created` (six fraction digits, Z) with a random id. */
export function callAt(created: string): FakeCall {
  return {
    callId: crypto.randomUUID(),
    created,
    joined: null,
    ended: null,
    endReason: null,
    billedDuration: null,
    shortSummary: null,
    summary: null,
    agent: null,
    agentId: null,
    metadata: {},
    recordingEnabled: false,
  };
}
