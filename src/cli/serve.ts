import { userInfo } from "node:os";
import { type Command, InvalidArgumentError, Option } from "commander";
import { UsageError } from "../errors.js";
import { labtestHome } from "../lab/home.js";
import { ensureRouter, routerPort } from "../lab/router-control.js";
import type { Laboratory } from "../laboratory/laboratory.js";
import type { CliIo } from "./io.js";
import type { StateGlobals } from "./state.js";

/** Every interface, on the usual alternative HTTPS port: a team's server is reached from other machines. */
const DEFAULT_LISTEN = "0.0.0.0:8443";
/** How long a stop waits for the operations in flight (a create building an image) before cutting them. */
const SHUTDOWN_GRACE_MS = 60_000;

const STOP_SIGNALS = ["SIGTERM", "SIGINT"] as const;

/**
 * A listener for the stop signals, kept on the process until serve has stopped: a one-time
 * listener is gone once called, and execa's signal-exit (loaded when an operation runs a
 * program) then finds no other listener and kills the process, cutting what serve waits for.
 */
function stopListener(): { listener: (signal: NodeJS.Signals) => void; received: Promise<NodeJS.Signals> } {
  let listener: (signal: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    listener = resolve;
  });
  for (const signal of STOP_SIGNALS) process.on(signal, listener);
  return { listener, received };
}

interface ServeOptions {
  listen: { host: string; port: number };
  cert?: string;
  key?: string;
  home?: string;
  stdio?: boolean;
  identity?: string;
}

/** `HOST:PORT`, an IPv6 host in brackets (`[::]:8443`). */
function listenAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new InvalidArgumentError(`'${text}' is not HOST:PORT (e.g. 0.0.0.0:8443, [::]:8443, 127.0.0.1:0).`);
  return { host: match[1] ?? match[2] ?? "", port };
}

/** `labtest serve`: this machine's laboratory over HTTPS, for the team's laptops and CI. */
export function registerServeCommand(program: Command, io: CliIo): void {
  program
    .command("serve")
    .description(
      "serve this laboratory over HTTPS (its API under /api/v1, tokens from labtest token) and keep its router running; stops on SIGTERM or SIGINT once the operations in flight end (60 s at most)",
    )
    .addOption(
      new Option("--listen <host:port>", "address and port to listen on")
        .default(listenAddress(DEFAULT_LISTEN), DEFAULT_LISTEN)
        .argParser(listenAddress),
    )
    .option(
      "--cert <file>",
      "the server's certificate chain (PEM); default: <home>/tls/server.pem from labtest lab init",
    )
    .option("--key <file>", "the key of --cert (PEM); default: <home>/tls/server-key.pem")
    .option("--home <dir>", "the laboratory's home (default: $LABTEST_HOME, else ~/.local/share/labtest)")
    .option(
      "--stdio",
      "serve one SSH session instead, as an SSH key's forced command (labtest lab add-key writes it): SSH_ORIGINAL_COMMAND 'labtest request' reads a request line on stdin and answers on stdout",
    )
    .option("--identity <name>", "with --stdio: the SSH key the session logged in with")
    .action((options: ServeOptions, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      // --home reaches everything that finds the home through the environment, as LABTEST_HOME.
      const env = options.home ? { ...io.env, LABTEST_HOME: options.home } : io.env;
      return options.stdio || options.identity !== undefined
        ? serveSshSession(io, env, options, globals)
        : serve(io, env, options, globals);
    });
}

/**
 * The laboratory as a server carries requests out on it: this machine's, refusing repositories
 * named by a path (its clients are other machines: a path they name is not a repository here).
 * Loaded when made: the forced command of a git push or fetch never makes it.
 */
async function servedLaboratory(env: NodeJS.ProcessEnv, globals: StateGlobals): Promise<Laboratory> {
  const { EmbeddedLaboratory } = await import("../laboratory/embedded.js");
  return new EmbeddedLaboratory({
    env,
    cwd: labtestHome(env),
    acceptsLocalPaths: false,
    ...(globals.state ? { statePath: globals.state } : {}),
  });
}

/** `labtest serve --stdio --identity NAME`: one SSH session of the key NAME (see server/stdio.ts). */
async function serveSshSession(
  io: CliIo,
  env: NodeJS.ProcessEnv,
  options: ServeOptions,
  globals: StateGlobals,
): Promise<void> {
  if (!options.stdio || options.identity === undefined)
    throw new UsageError("--stdio and --identity go together", [
      {
        where: options.stdio ? "--identity" : "--stdio",
        what: "missing",
        fix: "let labtest lab add-key write the forced command: it gives both",
      },
    ]);
  // The server's modules load here, in the command that needs them: other commands never pay for them.
  const [{ laboratoryUserKeys }, { AuditLog }, { serveStdio }] = await Promise.all([
    import("../server/keys.js"),
    import("../server/audit.js"),
    import("../server/stdio.js"),
  ]);
  const home = labtestHome(env);
  const keys = laboratoryUserKeys(home);
  const audit = new AuditLog(home);
  let laboratory: Promise<Laboratory> | undefined;
  try {
    // The session's own stdin and stdout: they are the SSH channel, and carry JSON that no
    // secret masking may touch (io's writers mask).
    io.exitCode = await serveStdio({
      env,
      home,
      keyName: options.identity,
      identify: (name) => keys.identity(name),
      laboratory: () => {
        laboratory ??= servedLaboratory(env, globals);
        return laboratory;
      },
      audit,
      input: process.stdin,
      output: process.stdout,
      stderr: io.stderr,
    });
  } finally {
    // A laboratory that failed to open was answered as the session's error already.
    await laboratory?.then(
      (opened) => opened.close(),
      () => undefined,
    );
    keys.close();
    audit.close();
  }
}

async function serve(
  io: CliIo,
  env: NodeJS.ProcessEnv,
  options: ServeOptions,
  globals: StateGlobals,
): Promise<void> {
  if ((options.cert === undefined) !== (options.key === undefined))
    throw new UsageError("--cert and --key go together", [
      {
        where: options.cert ? "--key" : "--cert",
        what: "missing",
        fix: "give both, or neither to use labtest lab init's",
      },
    ]);
  const [
    { separatesAccounts },
    { AuditLog },
    { startLaboratoryServer },
    { readServerTls, tlsFiles },
    { TokenStore },
    { laboratoryUserKeys },
    { listenForRequests },
  ] = await Promise.all([
    import("../lab/accounts.js"),
    import("../server/audit.js"),
    import("../server/http.js"),
    import("../server/tls.js"),
    import("../server/tokens.js"),
    import("../server/keys.js"),
    import("../server/requests-socket.js"),
  ]);
  const home = labtestHome(env);
  if (!separatesAccounts())
    io.stderr(
      `labtest serve: warning: not running as root, so every app runs as ${userInfo().username}, this laboratory's own account, and can read its home (the age identity, the state, other experiments' credentials): serve a team as root, for apps with accounts of their own\n`,
    );
  const tls = await readServerTls(
    options.cert && options.key ? { cert: options.cert, key: options.key } : tlsFiles(home),
  );
  // The router stays its own daemon: experiments keep answering while serve restarts or upgrades,
  // and every create already checks that daemon (ensureRoute), which would start a second router
  // beside one run in this process.
  const router = await ensureRouter(home, routerPort(env));
  const laboratory = await servedLaboratory(env, globals);
  const tokens = new TokenStore(home);
  const keys = laboratoryUserKeys(home);
  const audit = new AuditLog(home);
  const log = (line: string) => io.stdout(`${line}\n`);
  const stopping = stopListener();
  try {
    // The SSH keys' forced command relays its requests here (server/relay.ts), sparing each a labtest start.
    const requests = await listenForRequests({
      home,
      env,
      laboratory,
      identify: (name) => keys.identity(name),
      audit,
      log,
    });
    try {
      const server = await startLaboratoryServer({
        laboratory,
        listen: options.listen,
        tls,
        authenticator: tokens,
        audit,
        log,
      });
      io.stdout(
        `labtest serve: the laboratory's API on ${server.url}/api/v1, SSH keys' requests on ${requests.path}, its router on port ${router.port} (pid ${router.pid})\n`,
      );
      const signal = await stopping.received;
      io.stdout(`labtest serve: stopping (${signal}): letting the operations in flight end\n`);
      await Promise.all([server.close(SHUTDOWN_GRACE_MS), requests.close(SHUTDOWN_GRACE_MS)]);
      io.stdout("labtest serve: stopped\n");
    } finally {
      await requests.close(0);
    }
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, stopping.listener);
    await laboratory.close();
    tokens.close();
    keys.close();
    audit.close();
  }
}
