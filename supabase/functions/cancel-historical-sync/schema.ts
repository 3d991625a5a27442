// Body of cancel-historical-sync (docs/ARCHITECTURE.md §6).
import { z } from "zod";

export const CancelBody = z.strictObject({ job_id: z.guid() });
