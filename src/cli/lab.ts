import { isIP } from "node:net";
import { type Command, InvalidArgumentError } from "commander";
import { labtestHome } from "../lab/home.js";
import {
  ensureRouter,
  listenProblem,
  type RouterStatus,
  routerPort,
  routerStatus,
  stopRouter,
} from "../lab/router-control.js";
import { initLaboratoryTls } from "../server/tls.js";
import { type CliIo, type GlobalOptions, writeJson } from "./io.js";

function listenAddress(address: string): string {
  const problem = listenProblem(address);
  if (problem) throw new InvalidArgumentError(`'${address}' ${problem}.`);
  return address;
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

/** `labtest lab init|start|stop|status`: the laboratory's TLS files and its router. */
export function registerLabCommands(program: Command, io: CliIo): void {
  const lab = program
    .command("lab")
    .description("the laboratory's TLS files, and its router (reverse proxy to the experiments)");
  const report = (command: Command, status: RouterStatus) => {
    if (command.optsWithGlobals<GlobalOptions>().json) writeJson(io, status);
    else
      io.stdout(
        status.running
          ? `router running on ${status.address} port ${status.port} (pid ${status.pid})\n`
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
    .action(async (options: { listen?: string; port?: number }, command: Command) =>
      report(
        command,
        await ensureRouter(labtestHome(io.env), options.port ?? routerPort(io.env), options.listen),
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
}
