import { isIP } from "node:net";
import { type Command, InvalidArgumentError, Option } from "commander";
import { labtestHome } from "../lab/home.js";
import { experimentUrl, type PublicBase } from "../lab/router.js";
import {
  ensureRouter,
  listenProblem,
  parsePublicBase,
  proxyProblem,
  type RouterStatus,
  routerPort,
  routerStatus,
  stopRouter,
  trustedProxies,
} from "../lab/router-control.js";
import { SCOPES, type Scope, wireError } from "../laboratory/wire.js";
import type { SshKeys } from "../server/keys.js";
import { type CliIo, type GlobalOptions, writeJson } from "./io.js";
import { table, time } from "./tokens.js";

function listenAddress(address: string): string {
  const problem = listenProblem(address);
  if (problem) throw new InvalidArgumentError(`'${address}' ${problem}.`);
  return address;
}

/** `lab start --public`: a public base, or `direct` (users reach the router itself). */
function publicChoice(text: string): PublicBase | "direct" {
  // Not null: commander takes a null from a parser for a missing value.
  if (text === "direct") return text;
  const base = parsePublicBase(text);
  if (!base)
    throw new InvalidArgumentError(
      `'${text}' is not a scheme with an optional port (https, https:8443, http:80) nor direct.`,
    );
  return base;
}

/** `lab start --trust-proxy`, repeatable: addresses and subnets, or `none`. */
function trustChoice(text: string, previous: string[] | undefined): string[] {
  if (text === "none") return previous ?? [];
  const problem = proxyProblem(text);
  if (problem) throw new InvalidArgumentError(`'${text}' ${problem}.`);
  return [...(previous ?? []), text];
}

function portNumber(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535)
    throw new InvalidArgumentError(`'${text}' is not a TCP port (1 to 65535).`);
  return port;
}

/** Collects a repeated option's values. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function ipAddress(text: string): string {
  if (isIP(text) === 0) throw new InvalidArgumentError(`'${text}' is not an IP address.`);
  return text;
}

/** `labtest lab init|start|stop|status`: the laboratory's TLS files and its router; and its SSH keys. */
export function registerLabCommands(program: Command, io: CliIo): void {
  const lab = program
    .command("lab")
    .description(
      "the laboratory's TLS files, its router (reverse proxy to the experiments), and the SSH keys that reach it",
    );
  const report = (command: Command, status: RouterStatus) => {
    if (command.optsWithGlobals<GlobalOptions>().json) writeJson(io, status);
    else
      io.stdout(
        status.running
          ? `router running on ${status.address} port ${status.port} (pid ${status.pid})${behindProxy(status)}\n`
          : "router not running\n",
      );
  };
  lab
    .command("init")
    .description(
      "make the laboratory's CA and a server certificate for labtest serve (in <home>/tls/; kept when they exist) and print the CA's fingerprint, which clients pin",
    )
    .option("--name <host>", "a host name clients reach the laboratory by (repeatable)", collect, [])
    .option(
      "--ip <address>",
      "an IP address clients reach the laboratory at (repeatable)",
      (v, p: string[]) => collect(ipAddress(v), p),
      [],
    )
    .option("--force", "renew the server certificate (the CA stays, so clients keep their pin)")
    .action(async (options: { name: string[]; ip: string[]; force?: boolean }, command: Command) => {
      // The server's modules (x509 here) load in the commands that need them, not in every command.
      const { initLaboratoryTls } = await import("../server/tls.js");
      const made = await initLaboratoryTls(labtestHome(io.env), {
        names: options.name,
        ips: options.ip,
        force: options.force === true,
      });
      if (command.optsWithGlobals<GlobalOptions>().json) return writeJson(io, made);
      const { files } = made;
      io.stdout(
        `${made.createdCa ? "made" : "kept"} the laboratory CA: ${files.ca}\n` +
          `${made.createdServer ? "made" : "kept"} the server certificate: ${files.cert} (key: ${files.key})\n` +
          `CA fingerprint: ${made.fingerprint}\n`,
      );
    });
  lab
    .command("start")
    .description(
      "start the router (port: --port, else LABTEST_ROUTER_PORT, else where it last ran, else 8080)",
    )
    .option(
      "--port <port>",
      "listen on this port, and keep it for the laboratory's next commands (unless LABTEST_ROUTER_PORT is set)",
      portNumber,
    )
    .option(
      "--listen <address>",
      "listen on this IP address (0.0.0.0 or :: for every interface) instead of localhost " +
        "(127.0.0.1 and ::1); kept until another --listen, also when create restarts the router",
      listenAddress,
    )
    .option(
      "--public <scheme[:port]>",
      "the scheme and port users reach the experiments at, when a proxy stands in front of the router " +
        "(https: a TLS proxy on 443; https:8443, http:80), for the URLs labtest gives out; direct: the router's own. Kept until another --public",
      publicChoice,
    )
    .option(
      "--trust-proxy <address>",
      "keep the X-Forwarded-* headers of requests from this IP address or subnet (repeatable; none: from nobody). " +
        "Default: the loopback once --public is set, else nobody. Kept until another --trust-proxy",
      trustChoice,
    )
    .action(
      async (
        options: { listen?: string; port?: number; public?: PublicBase | "direct"; trustProxy?: string[] },
        command: Command,
      ) =>
        report(
          command,
          await ensureRouter(labtestHome(io.env), options.port ?? routerPort(io.env), {
            ...(options.listen !== undefined ? { address: options.listen } : {}),
            ...(options.public !== undefined
              ? { publicBase: options.public === "direct" ? null : options.public }
              : {}),
            ...(options.trustProxy !== undefined ? { trustedProxies: options.trustProxy } : {}),
          }),
        ),
    );
  lab
    .command("stop")
    .description("stop the router")
    .action(async (_options, command: Command) => {
      const stopped = await stopRouter(labtestHome(io.env));
      if (command.optsWithGlobals<GlobalOptions>().json) writeJson(io, { stopped });
      else io.stdout(stopped ? "router stopped\n" : "router was not running\n");
    });
  lab
    .command("status")
    .description("whether the router runs, and on which address and port")
    .action(async (_options, command: Command) => report(command, await routerStatus(labtestHome(io.env))));
  registerKeyCommands(lab, io);
}

/** What `lab status` adds for a router behind a proxy: its public URLs, and whose forwarding headers it keeps. */
function behindProxy(status: RouterStatus): string {
  const trusted = trustedProxies(status);
  if (!status.publicBase && trusted.length === 0) return "";
  const serving = status.publicBase ? `, serving ${experimentUrl("<host>", status.publicBase)}` : "";
  return `${serving}, trusting X-Forwarded-* from ${trusted.join(", ") || "nobody"}`;
}

/** `labtest lab add-key|keys|remove-key`: the SSH keys that reach the laboratory, each with its scope. */
function registerKeyCommands(lab: Command, io: CliIo): void {
  const json = (command: Command) => command.optsWithGlobals<GlobalOptions>().json === true;
  lab
    .command("add-key <name> <public-key-file>")
    .description(
      "let the SSH key of PUBLIC_KEY_FILE reach this laboratory as NAME: a line in the authorized_keys of the user running this command, the laboratory's user (root, for apps with accounts of their own; a laboratory run by another user — sudo -u labtest labtest lab add-key … — runs every pushed branch as that user, which can then read the age identity, the state and every experiment's credentials), whose forced command speaks labtest's protocol and git push only; restrict: no shell, no forwarding, no pty",
    )
    .addOption(
      new Option("--scope <scope>", "read: sees; deploy: also changes experiments; admin: everything")
        .choices(SCOPES)
        .makeOptionMandatory(),
    )
    .option("--app <app>", "limit it to this app (repeat for more; none: every app)", collect, [])
    .action(
      async (name: string, file: string, options: { scope: Scope; app: string[] }, command: Command) => {
        const key = await (await import("../server/keys.js")).readPublicKey(file);
        const added = await changeKeys(io, "keyAdd", name, (keys) =>
          keys.add(name, key, { scope: options.scope, apps: options.app }),
        );
        if (json(command)) return writeJson(io, added);
        const apps = added.apps.length ? added.apps.join(", ") : "every app";
        io.stdout(`added key ${added.name} (${added.fingerprint}): ${added.scope} on ${apps}\n`);
      },
    );
  lab
    .command("keys")
    .description("list the SSH keys that reach this laboratory (lab add-key's)")
    .action(async (_options, command: Command) => {
      const { laboratoryUserKeys } = await import("../server/keys.js");
      const keys = laboratoryUserKeys(labtestHome(io.env));
      try {
        const listed = keys.list();
        if (json(command)) writeJson(io, { keys: listed });
        else if (listed.length === 0) io.stdout("no SSH keys: add one with labtest lab add-key\n");
        else
          io.stdout(
            table([
              ["NAME", "FINGERPRINT", "SCOPE", "APPS", "ADDED"],
              ...listed.map((k) => [
                k.name,
                k.fingerprint,
                k.scope,
                k.apps.join(",") || "all",
                time(k.added),
              ]),
            ]),
          );
      } finally {
        keys.close();
      }
    });
  lab
    .command("remove-key <name>")
    .description("remove an SSH key: its line leaves authorized_keys, and the laboratory refuses it")
    .action(async (name: string, _options, command: Command) => {
      const removed = await changeKeys(io, "keyRemove", name, (keys) => keys.remove(name));
      if (json(command)) writeJson(io, { removed: removed.name });
      else io.stdout(`removed key ${removed.name} (${removed.fingerprint})\n`);
    });
}

/** Changes the keys, recorded in the audit log (who ran it, from "local") whether it was done or refused. */
async function changeKeys<T>(
  io: CliIo,
  what: "keyAdd" | "keyRemove",
  name: string,
  change: (keys: SshKeys) => T,
): Promise<T> {
  const [{ laboratoryUserKeys }, { AuditLog, localUser }] = await Promise.all([
    import("../server/keys.js"),
    import("../server/audit.js"),
  ]);
  const home = labtestHome(io.env);
  const keys = laboratoryUserKeys(home);
  const log = new AuditLog(home);
  const record = (result: string) =>
    log.record({
      at: new Date().toISOString(),
      who: localUser(io.env),
      what,
      target: name,
      result,
      from: "local",
    });
  try {
    const changed = change(keys);
    await record("ok");
    return changed;
  } catch (error) {
    const { type, summary } = wireError(error);
    await record(`${type}: ${summary}`);
    throw error;
  } finally {
    keys.close();
    log.close();
  }
}
