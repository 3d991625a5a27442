// Body of cancel-historical-sync (DESIGN.md §6).
import { z } from "zod";

export const CancelBody = z.strictObject({ job_id: z.guid() });
