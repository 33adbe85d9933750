import { homedir } from "node:os";
import { join } from "node:path";

/** Where a laboratory run by root keeps its home: server accounts cannot enter /root. */
const SYSTEM_HOME = "/var/lib/labtest";

/**
 * The laboratory's home: `$LABTEST_HOME`, else the per-user data directory
 * (`$XDG_DATA_HOME/labtest`, by default `~/.local/share/labtest`), or /var/lib/labtest for root,
 * whose native servers run under their own accounts and must reach their data.
 */
export function labtestHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LABTEST_HOME) return env.LABTEST_HOME;
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, "labtest");
  if (process.getuid?.() === 0) return SYSTEM_HOME;
  return join(homedir(), ".local", "share", "labtest");
}
