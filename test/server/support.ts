import { readFile } from "node:fs/promises";
import { request } from "node:https";
import { text } from "node:stream/consumers";
import { onTestFinished } from "vitest";
import type { AuditEntry } from "../../src/laboratory/identity.js";
import type { Laboratory } from "../../src/laboratory/laboratory.js";
import type { FailedLoginLimit } from "../../src/server/failed-logins.js";
import { type LaboratoryServer, startLaboratoryServer } from "../../src/server/http.js";
import { initLaboratoryTls } from "../../src/server/tls.js";
import { TokenStore } from "../../src/server/tokens.js";

export interface TestServer {
  server: LaboratoryServer;
  /** Tokens of the home's store: an administrator's, a reader's, a deployer of app shop only. */
  tokens: { admin: string; read: string; shop: string };
  /** The laboratory CA's certificate: what a client pins. */
  ca: string;
  audit: AuditEntry[];
  log: string[];
}

/** The HTTPS laboratory on 127.0.0.1, a free port, with a CA made in `home`; closed when the test ends. */
export async function testServer(
  home: string,
  laboratory: Laboratory,
  options: { failedLogins?: FailedLoginLimit } = {},
): Promise<TestServer> {
  const { files } = await initLaboratoryTls(home);
  const store = new TokenStore(home);
  const tokens = {
    admin: store.create({ name: "alice", scope: "admin" }).token,
    read: store.create({ name: "reader", scope: "read" }).token,
    shop: store.create({ name: "shop-ci", scope: "deploy", apps: ["shop"] }).token,
  };
  const audit: AuditEntry[] = [];
  const log: string[] = [];
  const server = await startLaboratoryServer({
    laboratory,
    listen: { host: "127.0.0.1", port: 0 },
    tls: { cert: await readFile(files.cert, "utf8"), key: await readFile(files.key, "utf8") },
    authenticator: store,
    audit: { record: async (entry) => void audit.push(entry) },
    log: (line) => void log.push(line),
    ...(options.failedLogins ? { failedLogins: options.failedLogins } : {}),
  });
  onTestFinished(async () => {
    await server.close(1000);
    store.close();
  });
  return { server, tokens, ca: await readFile(files.ca, "utf8"), audit, log };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request to `url` trusting only `ca`, as a client that pinned the laboratory's CA. */
export function ask(
  url: string,
  ca: string,
  options: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        ca,
        agent: false,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(payload ? { "content-type": "application/json" } : {}),
          ...options.headers,
        },
      },
      (response) =>
        text(response).then(
          (body) => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
          reject,
        ),
    );
    req.on("error", reject);
    req.end(payload);
  });
}
