// Imported (first) by the test helpers that build a Config from the environment: the test
// process runs with the local dev keys, as `deno task serve` does (tools/dev_env.ts), for
// whatever of them is not already set. Child processes the tests spawn inherit them.
import { applyDevEnv } from "../../tools/dev_env.ts";

applyDevEnv();
