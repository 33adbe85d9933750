import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import getPort from "get-port";
import type { NativeRecipe } from "../kind.js";
import { ADMIN_USER, logIn } from "./admin.js";

/**
 * Read by the server's and rabbitmqctl's scripts alike (RABBITMQ_CONF_ENV_FILE): the node's
 * name, ports and files, so a tool run with the server's environment finds that node.
 */
const ENV_FILE = "rabbitmq-env.conf";
const CONFIG_FILE = "rabbitmq.conf";
const LOOPBACK = "127.0.0.1";

/**
 * Debian's rabbitmq-server, one node per server: its own name, AMQP port, distribution port and
 * port mapper (epmd, which every node needs and which outlives it unless stopped), with its
 * cookie, database and configuration in its data directory.
 */
export const native: NativeRecipe = {
  debianPackage: "rabbitmq-server",
  programs: ["rabbitmq-server", "rabbitmqctl"],
  // The scripts themselves: Debian's /usr/sbin wrappers switch to the rabbitmq account's home.
  locations: async () => ["/usr/lib/rabbitmq/bin"],
  account: "rabbitmq",
  environment: (dataDirectory) => ({
    HOME: dataDirectory,
    RABBITMQ_CONF_ENV_FILE: join(dataDirectory, ENV_FILE),
  }),
  async initialize(context) {
    const [distributionPort, epmdPort] = [await loopbackPort(), await loopbackPort()];
    const file = (name: string) => join(context.dataDirectory, name);
    await writeFile(file(".erlang.cookie"), randomBytes(24).toString("hex"), { mode: 0o400 });
    await writeFile(file("enabled_plugins"), "[].\n");
    await writeFile(file(CONFIG_FILE), accountConfig(context.adminPassword), { mode: 0o600 });
    const settings: Record<string, string> = {
      NODENAME: `labtest-${context.port}@localhost`,
      DIST_PORT: String(distributionPort),
      ERL_EPMD_PORT: String(epmdPort),
      ERL_EPMD_ADDRESS: LOOPBACK,
      MNESIA_BASE: file("mnesia"),
      LOG_BASE: file("log"),
      // Logs go to the server's output, which labtest keeps and shows when it does not start.
      LOGS: "-",
      ENABLED_PLUGINS_FILE: file("enabled_plugins"),
      CONFIG_FILE: file(CONFIG_FILE),
      ADVANCED_CONFIG_FILE: file("advanced.config"),
      SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
      // rabbitmqctl is a node too: one that does not listen needs no port of its own.
      CTL_ERL_ARGS: "-dist_listen false",
    };
    const lines = Object.entries(settings).map(([key, value]) => `${key}=${shellWord(value)}\n`);
    await writeFile(file(ENV_FILE), lines.join(""));
  },
  // The script stays in the foreground as the VM's parent, turning SIGTERM into a clean stop:
  // the process labtest records is the shell that runs it. The listener on the command line
  // names the port, by which labtest tells the server from a process that reused its pid.
  serverArgs: (context) => ({
    program: "/bin/sh",
    args: [
      context.programs["rabbitmq-server"] as string,
      "-rabbit",
      "tcp_listeners",
      `[{"${LOOPBACK}",${context.port}}]`,
    ],
  }),
  async afterFirstStart(context) {
    const administrator = { user: ADMIN_USER, password: context.adminPassword, vhost: "/" };
    await (await logIn({ host: LOOPBACK, port: context.port }, administrator)).close();
    // The account now lives in the node's database (hashed): the password leaves the configuration.
    await writeFile(join(context.dataDirectory, CONFIG_FILE), "");
  },
  async afterStop(dataDirectory) {
    const settings = await readFile(join(dataDirectory, ENV_FILE), "utf8").catch(() => "");
    const port = /^ERL_EPMD_PORT='(\d+)'$/m.exec(settings)?.[1];
    if (port) await stopPortMapper(Number(port));
  },
};

/** The administrator the broker creates on its first boot (over an empty database). */
function accountConfig(password: string): string {
  return `default_user = ${ADMIN_USER}\ndefault_pass = ${password}\n`;
}

/** Asks an epmd to exit (its protocol's KILL_REQ, as `epmd -kill`); one that is gone already is fine. */
function stopPortMapper(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, LOOPBACK, () => socket.end(Buffer.from([0, 1, "k".charCodeAt(0)])));
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on("error", () => resolve());
    socket.on("close", () => resolve());
    socket.resume();
  });
}

function loopbackPort(): Promise<number> {
  return getPort({ host: LOOPBACK });
}

/** A value the scripts read as one word, whatever it holds (the data directory's path). */
function shellWord(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
