import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The laboratory's home: `$LABTEST_HOME`, else the per-user data directory
 * (`$XDG_DATA_HOME/labtest`, by default `~/.local/share/labtest`).
 */
export function labtestHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LABTEST_HOME) return env.LABTEST_HOME;
  return join(env.XDG_DATA_HOME || join(homedir(), ".local", "share"), "labtest");
}
