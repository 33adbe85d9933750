import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { request } from "node:http";
import { isIP } from "node:net";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import pRetry, { AbortError } from "p-retry";
import writeFileAtomic from "write-file-atomic";
import { LabtestError } from "../errors.js";
import { labtestHome } from "./home.js";
import { commandLines, processIdentity } from "./processes.js";
import { Registry } from "./registry.js";
import {
  DEFAULT_PORTS,
  experimentUrl,
  LABORATORY_HEADER,
  LOOPBACK,
  listenAddresses,
  type PublicBase,
  ROUTER_PAGE_HEADER,
  type RouterOptions,
} from "./router.js";

const DAEMON = fileURLToPath(new URL("../../dist/lab/router-daemon.js", import.meta.url));
/** The Host of the router's own check: no experiment has it, so the router answers itself. */
const CHECK_HOST = "labtest-router-check";
const DEFAULT_PORT = 8080;

/**
 * The router's port on the embedded laboratory and how users reach its experiments, from one look
 * at its record. The port: `LABTEST_ROUTER_PORT`, else the port its router last ran on (chosen
 * with `lab start --port`), else 8080. The public base: the one its router was started with
 * (`lab start --public`), else the router itself (http, its port).
 */
export function routerSettings(env: NodeJS.ProcessEnv = process.env): {
  port: number;
  publicBase: PublicBase;
} {
  const record = recorded(labtestHome(env));
  const port = env.LABTEST_ROUTER_PORT ? Number(env.LABTEST_ROUTER_PORT) : (record.port ?? DEFAULT_PORT);
  return { port, publicBase: record.publicBase ?? { scheme: "http", port } };
}

/** The router's port on the embedded laboratory (see routerSettings). */
export function routerPort(env: NodeJS.ProcessEnv = process.env): number {
  return routerSettings(env).port;
}

/** How users reach the experiments of the embedded laboratory (see routerSettings). */
export function publicBase(env: NodeJS.ProcessEnv = process.env): PublicBase {
  return routerSettings(env).publicBase;
}

/** A public base as `lab start --public` spells it, `https` or `https:8443`; undefined when it is not one. */
export function parsePublicBase(text: string): PublicBase | undefined {
  const match = /^(https?)(?::(\d{1,5}))?$/.exec(text);
  const scheme = match?.[1] as PublicBase["scheme"] | undefined;
  const port = Number(match?.[2] ?? (scheme && DEFAULT_PORTS[scheme]));
  return scheme && port >= 1 && port <= 65535 ? { scheme, port } : undefined;
}

/** Why `proxy` cannot be a trusted proxy (an IP address, or a subnet such as `10.0.0.0/8`), or undefined. */
export function proxyProblem(proxy: string): string | undefined {
  const [address = "", bits, ...rest] = proxy.split("/");
  const family = isIP(address);
  const most = family === 6 ? 128 : 32;
  if (family === 0 || rest.length > 0) return "is not an IP address or a subnet (address/bits)";
  if (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > most))
    return `has a prefix length that is not 0 to ${most}`;
  return undefined;
}

/**
 * The proxies trusted by default: the loopback, once a public base says that users come through
 * a proxy (the router speaks plain HTTP, so an https base means a TLS proxy in front of it, which
 * the documented set-up runs on this machine). Trusting the loopback gives nothing new to this
 * machine's other programs, the experiments' apps among them: they reach every app directly on
 * its loopback port, with any headers they like. Without a public base the router is the edge.
 */
const LOOPBACK_PROXIES = ["127.0.0.0/8", "::1"];

/** Whose X-Forwarded-* headers a router with these settings keeps. */
export function trustedProxies(router: Pick<RouterStatus, "publicBase" | "trustedProxies">): string[] {
  return router.trustedProxies ?? (router.publicBase ? LOOPBACK_PROXIES : []);
}

/** Why `address` cannot be where the router listens (`localhost` or an IP address), or undefined. */
export function listenProblem(address: string): string | undefined {
  return address === LOOPBACK || isIP(address) !== 0 ? undefined : "is not localhost or an IP address";
}

export interface RouterStatus {
  running: boolean;
  pid: number;
  port: number;
  /** `localhost` (the loopback) or the IP address it listens on, `0.0.0.0` or `::` for all. */
  address: string;
  /** How users reach the experiments when not at the router itself (a proxy in front of it). */
  publicBase?: PublicBase;
  /** The proxies whose X-Forwarded-* headers are kept, as the administrator chose them (unset: the default). */
  trustedProxies?: string[];
}

/** What an administrator chooses for the router; each choice is kept until chosen again. */
export interface RouterChoices {
  address?: string;
  /** null: users reach the router itself. */
  publicBase?: PublicBase | null;
  /** The proxies whose X-Forwarded-* headers are kept (none: []); null: the default. */
  trustedProxies?: string[] | null;
}

/** What router.json in the home says of the router that last ran. */
function recorded(home: string): Partial<RouterStatus> {
  try {
    return JSON.parse(readFileSync(join(home, "router.json"), "utf8")) as Partial<RouterStatus>;
  } catch {
    return {};
  }
}

/** Whether the laboratory's router runs (its daemon's pid and command line, recorded in the home). */
export async function routerStatus(home: string): Promise<RouterStatus> {
  const { pid = 0, port = 0, address = LOOPBACK, publicBase, trustedProxies } = recorded(home);
  const argv = (await processIdentity(pid))?.argv ?? [];
  return {
    pid,
    port,
    address,
    running: argv.includes(DAEMON) && argv.includes(home),
    ...(publicBase ? { publicBase } : {}),
    ...(trustedProxies ? { trustedProxies } : {}),
  };
}

/** The settings `choices` leave the router with, from those it last ran with. */
function settled(status: RouterStatus, port: number, choices: RouterChoices): RouterStatus {
  const kept = <T>(chosen: T | null | undefined, before: T | undefined) =>
    chosen === null ? undefined : (chosen ?? before);
  const publicBase = kept(choices.publicBase, status.publicBase);
  const trusted = kept(choices.trustedProxies, status.trustedProxies);
  return {
    running: true,
    pid: 0,
    port,
    address: choices.address ?? status.address,
    ...(publicBase ? { publicBase } : {}),
    ...(trusted ? { trustedProxies: trusted } : {}),
  };
}

/**
 * Starts the router on `port` with `choices` unless it runs so; resolves once it answers as this
 * laboratory's on every address it listens on. What is not chosen stays as it last ran (an
 * administrator's choice outlives a restart): by default it listens on the loopback, for users
 * reaching it directly, trusting no proxy. A port another program holds (another laboratory's
 * router, say) is an error naming it.
 */
export async function ensureRouter(
  home: string,
  port: number,
  choices: RouterChoices = {},
): Promise<RouterStatus> {
  // Two commands starting the router at once would start two: one would hold the port, the other retry forever.
  return new Registry(home).withLock("router", async () => {
    const status = await routerStatus(home);
    const wanted = settled(status, port, choices);
    const same = (a: RouterStatus, b: RouterStatus) =>
      a.port === b.port &&
      a.address === b.address &&
      JSON.stringify(serving(a)) === JSON.stringify(serving(b));
    if (status.running && same(status, wanted)) {
      await answering(home, status).catch(async (error) => {
        await stopRouter(home);
        throw error;
      });
      return status;
    }
    if (status.running) await stopRouter(home);
    return startRouter(home, wanted);
  });
}

/** What the router serves with besides its port and address: its serving process's last argument, as JSON. */
export type ServingSettings = Pick<RouterOptions, "publicBase" | "trustedProxies">;

function serving(router: RouterStatus): ServingSettings {
  return {
    publicBase: router.publicBase ?? { scheme: "http", port: router.port },
    trustedProxies: trustedProxies(router),
  };
}

/** Runs the router daemon and records it once it answers as this laboratory's (a port that fails is not kept). */
async function startRouter(home: string, wanted: RouterStatus): Promise<RouterStatus> {
  const { port, address } = wanted;
  const log = await open(join(home, "router.log"), "a", 0o600);
  const daemon = spawn(
    process.execPath,
    [DAEMON, home, String(port), address, JSON.stringify(serving(wanted))],
    { detached: true, stdio: ["ignore", log.fd, log.fd] },
  );
  await log.close();
  daemon.unref();
  const started = { ...wanted, pid: daemon.pid ?? 0 };
  try {
    await answering(home, started, daemon);
  } catch (error) {
    await stopDaemon(daemon);
    throw error;
  }
  await writeFileAtomic(join(home, "router.json"), JSON.stringify(started), { mode: 0o600 });
  return started;
}

async function stopDaemon(daemon: ChildProcess): Promise<void> {
  if (daemon.exitCode !== null || daemon.signalCode !== null) return;
  const exited = new Promise((resolve) => daemon.once("exit", resolve));
  // Unreferenced, its exit would not keep this process waiting for it.
  daemon.ref();
  daemon.kill("SIGTERM");
  await exited;
}

/**
 * Resolves once the router answers as this laboratory's on every address it listens on; fails at
 * once when another program answers there, or when the daemon exits.
 */
async function answering(home: string, router: RouterStatus, daemon?: ChildProcess): Promise<void> {
  const laboratory = new Registry(home).id;
  try {
    await pRetry(
      async () => {
        if (daemon && daemon.exitCode !== null)
          throw new AbortError(`the daemon exited with ${daemon.exitCode}`);
        for (const host of probeHosts(router.address)) {
          const answer = await ask(host, router.port, CHECK_HOST, "/");
          if (answer.laboratory !== laboratory)
            throw new AbortError(await portTaken(router.port, answer.laboratory));
        }
      },
      { retries: 100, minTimeout: 50, maxTimeout: 200, maxRetryTime: 15_000 },
    );
  } catch (error) {
    if (error instanceof LabtestError) throw error;
    const log = await readFile(join(home, "router.log"), "utf8").catch(() => "");
    throw new LabtestError(`the router did not start on ${router.address} port ${router.port}`, [
      {
        where: join(home, "router.log"),
        what: log.trim().split("\n").slice(-5).join("\n") || String(error),
        fix: `${await otherPort()}; check the address is this machine's`,
      },
    ]);
  }
}

/**
 * Starts the router if it is not running, and checks that the experiment at `host` answers
 * through it (on `path`, its health check) as this laboratory's: an experiment's URL is only
 * given out once it serves that experiment.
 */
export async function ensureRoute(home: string, port: number, host: string, path: string): Promise<void> {
  const router = await ensureRouter(home, port);
  const [probe = "127.0.0.1"] = probeHosts(router.address);
  const url = experimentUrl(host, { scheme: "http", port });
  // Asked as a browser opening the URL asks; again if the router is being restarted just now.
  const answer = await pRetry(() => ask(probe, port, new URL(url).host, path), {
    retries: 5,
    minTimeout: 200,
  });
  if (answer.laboratory !== new Registry(home).id) throw await portTaken(port, answer.laboratory);
  if (answer.page)
    throw new LabtestError(`the experiment does not answer through the router at ${url}`, [
      {
        where: `GET ${path} with Host ${host} on port ${port}`,
        what: `the router answered ${answer.status} itself (${answer.page})`,
        fix: `see ${join(home, "router.log")}`,
      },
    ]);
}

interface Answer {
  status: number;
  /** The laboratory the router that answered names; undefined when not a labtest router. */
  laboratory: string | undefined;
  /** Why the router answered itself (no experiment, no answer, …); undefined when the app did. */
  page: string | undefined;
}

/** GET `path` with Host `hostHeader` from whatever listens on `host`:`port`. */
function ask(host: string, port: number, hostHeader: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, path, headers: { host: hostHeader }, agent: false, timeout: 2000 },
      (response) => {
        response.resume();
        const header = (name: string) => [response.headers[name]].flat()[0];
        resolve({
          status: response.statusCode ?? 0,
          laboratory: header(LABORATORY_HEADER),
          page: header(ROUTER_PAGE_HEADER),
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer from ${host} port ${port} within 2 s`)));
    req.on("error", reject);
    req.end();
  });
}

/** The error for a port another program holds, naming the laboratory whose router it is when it can tell. */
async function portTaken(port: number, laboratory: string | undefined): Promise<LabtestError> {
  const fix = await otherPort();
  if (laboratory === undefined)
    return new LabtestError(`port ${port} is taken by a program that is not a labtest router`, [
      { where: `port ${port}`, what: "it answers without naming a labtest laboratory", fix },
    ]);
  const home = await routerHome(port, laboratory);
  return new LabtestError(`port ${port} is taken by the router of another laboratory`, [
    {
      where: `port ${port}`,
      what: home
        ? `the router of the laboratory whose home is ${home}`
        : `the router of laboratory ${laboratory} (its home is not visible from here)`,
      fix: home ? `${fix}; or stop that router: LABTEST_HOME=${home} labtest lab stop` : fix,
    },
  ]);
}

/** How to choose another port, with one that is free now. */
async function otherPort(): Promise<string> {
  const free = await getPort({ host: "127.0.0.1" });
  return `give this laboratory a port of its own: labtest lab start --port ${free} (kept for its next commands), or LABTEST_ROUTER_PORT=${free} for every command`;
}

/** The home of the laboratory `laboratory` whose router runs on `port`, from the process table. */
async function routerHome(port: number, laboratory: string): Promise<string | undefined> {
  const daemon = `${sep}lab${sep}router-daemon.js`;
  for (const line of (await commandLines()).values()) {
    const args = line.split("\0");
    const at = args.findIndex((arg) => arg.endsWith(daemon));
    const home = args[at + 1];
    if (at >= 0 && home && args[at + 2] === String(port) && new Registry(home).id === laboratory) return home;
  }
  return undefined;
}

/** Where this machine reaches a router listening on `address`, as URL hosts: one per socket it binds. */
function probeHosts(address: string): string[] {
  return listenAddresses(address).map((bound) => {
    if (bound === "0.0.0.0") return "127.0.0.1";
    if (bound === "::") return "::1";
    return bound;
  });
}

/** Stops the router if it runs. */
export async function stopRouter(home: string): Promise<boolean> {
  const status = await routerStatus(home);
  if (!status.running) return false;
  process.kill(status.pid, "SIGTERM");
  for (let waited = 0; waited < 5000 && (await routerStatus(home)).running; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
  return true;
}
