import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import type { Laboratory } from "../../src/laboratory/laboratory.js";
import { type LaboratoryServer, startLaboratoryServer } from "../../src/server/http.js";
import { initLaboratoryTls } from "../../src/server/tls.js";
import { TokenStore } from "../../src/server/tokens.js";
import { runCli } from "./cli.js";
import { scratchDir } from "./project.js";

export interface ServedLaboratory {
  server: LaboratoryServer;
  tokens: TokenStore;
  /** The laboratory CA's, as labtest lab init prints it. */
  fingerprint: string;
  /** The server's request log, a line per request. */
  requests: string[];
  /** Stops the server (also done when the test ends). */
  stop: () => Promise<void>;
}

/**
 * `laboratory` served over real TLS on 127.0.0.1 (`port`, or any free one) with a CA made in
 * `home` and a real token store there; stopped, with `laboratory`, when the test ends.
 */
export async function servedLaboratory(
  home: string,
  laboratory: Laboratory,
  port = 0,
): Promise<ServedLaboratory> {
  const tokens = new TokenStore(home);
  const { fingerprint, files } = await initLaboratoryTls(home);
  const requests: string[] = [];
  const server = await startLaboratoryServer({
    laboratory,
    listen: { host: "127.0.0.1", port },
    tls: { cert: await readFile(files.cert, "utf8"), key: await readFile(files.key, "utf8") },
    authenticator: tokens,
    audit: { record: async () => undefined },
    log: (line) => void requests.push(line),
  });
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await server.close(1000);
      tokens.close();
      await laboratory.close();
    })();
    return stopped;
  };
  onTestFinished(stop);
  return { server, tokens, fingerprint, requests, stop };
}

/** A laptop's environment: a config directory of its own, and no laboratory chosen by the caller's. */
export async function laptopEnv(): Promise<NodeJS.ProcessEnv> {
  return {
    ...process.env,
    LABTEST_CONFIG_DIR: join(await scratchDir("labtest-laptop-"), "config"),
    LABTEST_TOKEN: "",
    LABTEST_HOST: "",
    LABTEST_FINGERPRINT: "",
  };
}

/** `labtest login URL --token -` from `env`, the token on standard input. */
export function login(server: LaboratoryServer, env: NodeJS.ProcessEnv, token: string, ...more: string[]) {
  return runCli(["login", server.url, "--token", "-", ...more], process.cwd(), env, `${token}\n`);
}
