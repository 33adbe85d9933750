import { userInfo } from "node:os";
import { Writable } from "node:stream";
import { UsageError } from "../errors.js";
import { experimentIdentity, identityVariables } from "../experiments/environment.js";
import { type Delivery, Experiments, OutputGoneError, type Turn } from "../experiments/index.js";
import { dockerEngine } from "../lab/docker.js";
import { labtestHome } from "../lab/home.js";
import { publicBase, routerSettings } from "../lab/router-control.js";
import { initAgeIdentity, SECRETS_KEY, type SecretsConfig, secretsConfig } from "../secrets/index.js";
import { AuditLog } from "../server/audit.js";
import { TokenStore } from "../server/tokens.js";
import { sentInitialData } from "../services/index.js";
import {
  isWritable,
  lookup,
  type OpenedState,
  openState,
  validateKey,
  type WritableStateStore,
} from "../state/index.js";
import { isLocalRepository } from "./code.js";
import type { Laboratory } from "./laboratory.js";
import { type EventSink, parseRequest, type Requests } from "./protocol.js";

/** Where the embedded laboratory lives: its home, its state and its engine come from these. */
export interface EmbeddedOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** An explicit state.json (`--state`); otherwise found as openState finds it. */
  statePath?: string;
  /**
   * Whether requests may name repositories by a path on this machine (default: yes, the client
   * runs here). A laboratory serving other machines says no: their paths are not its files.
   */
  acceptsLocalPaths?: boolean;
}

const ignore: EventSink = () => undefined;

/**
 * This machine as the laboratory: requests are checked as a remote laboratory would check them,
 * then carried out in this process. The state and the experiments open on first use.
 */
export class EmbeddedLaboratory implements Laboratory {
  private opened: Promise<{ state: OpenedState; experiments: Experiments }> | undefined;
  private accessOpened: { tokens: TokenStore; audit: AuditLog } | undefined;

  constructor(private readonly options: EmbeddedOptions) {}

  private open(): Promise<{ state: OpenedState; experiments: Experiments }> {
    this.opened ??= (async () => {
      const { env, cwd, statePath } = this.options;
      const state = await openState({ env, cwd, ...(statePath ? { statePath } : {}) });
      const experiments = new Experiments({
        home: labtestHome(env),
        state: state.store,
        router: () => routerSettings(env),
        docker: dockerEngine(env),
      });
      return { state, experiments };
    })();
    return this.opened;
  }

  /** Who may use the laboratory and what they did: apart from the state, which they do not need. */
  private access(): { tokens: TokenStore; audit: AuditLog } {
    const home = labtestHome(this.options.env);
    this.accessOpened ??= { tokens: new TokenStore(home), audit: new AuditLog(home) };
    return this.accessOpened;
  }

  private async experiments(): Promise<Experiments> {
    return (await this.open()).experiments;
  }

  async create(request: unknown, events = ignore) {
    const parsed = parseRequest("create", request);
    const { project, branch, name } = parsed;
    const lab = await this.experiments();
    const asked = { branch, ...(name ? { name } : {}), ...this.delivery(parsed) };
    return lab.create(project, asked, step(events), this.turn(parsed));
  }

  async update(request: unknown, events = ignore) {
    const parsed = parseRequest("update", request);
    const lab = await this.experiments();
    return lab.update(parsed.project, parsed.name, step(events), this.turn(parsed), this.delivery(parsed));
  }

  async delete(request: unknown, events = ignore) {
    const parsed = parseRequest("delete", request);
    return (await this.experiments()).delete(parsed.app, parsed.name, step(events), this.turn(parsed));
  }

  /** Who asks (a server's identity, or this machine's user) and how long they wait for the experiment. */
  private turn(request: { wait?: number | undefined; who?: string | undefined }): Turn {
    const who = request.who ?? (this.options.env.SUDO_USER || userInfo().username);
    return { who, ...(request.wait !== undefined ? { waitMs: request.wait * 1000 } : {}) };
  }

  async codeHave(request: unknown) {
    const { app } = parseRequest("codeHave", request);
    return { heads: await (await this.experiments()).codeHeads(app) };
  }

  async codePush(request: unknown) {
    const { app, bundle } = parseRequest("codePush", request);
    return { heads: await (await this.experiments()).receiveCode(app, Buffer.from(bundle, "base64")) };
  }

  /**
   * Where a create or update takes its code from and the initial data the client sent. A
   * repository named by a path (a local source, a path or file:// URL, or such a code_repo_url)
   * is refused when the client is another machine: its paths are not this one's files.
   */
  private delivery(request: Requests["create"] | Requests["update"]): Delivery {
    const { code, initialData, project } = request;
    const path =
      code?.kind === "local"
        ? code.repository
        : code?.kind === "url"
          ? code.url
          : code === undefined
            ? project.config.config.code_repo_url
            : null;
    const local = path !== null && (code?.kind === "local" || isLocalRepository(path));
    if (local && this.options.acceptsLocalPaths === false)
      throw new UsageError(`this laboratory cannot read the repository ${path}`, [
        {
          where: "code_repo_url",
          what: "a path names a repository on the client's machine, and the laboratory is another one",
          fix: "labtest create/update --push sends the branch's commits; or set code_repo_url to a git host's URL",
        },
      ]);
    return { ...(code ? { code } : {}), ...(initialData ? { initialData } : {}) };
  }

  async list(request: unknown) {
    const { app } = parseRequest("list", request);
    return (await this.experiments()).list(app);
  }

  async status(request: unknown) {
    const { project, name } = parseRequest("status", request);
    const lab = await this.experiments();
    // The app may print its own secrets: revealing them here has them masked in what is shown.
    await lab.revealSecrets(project, name).catch(() => undefined);
    const { app_name, health_check_path } = project.config.config;
    return (await lab.details(app_name, name, health_check_path)) ?? null;
  }

  async logs(request: unknown, events: EventSink, signal?: AbortSignal) {
    const { project, name, service, follow } = parseRequest("logs", request);
    const lab = await this.experiments();
    const app = project.config.config.app_name;
    await lab.revealSecrets(project, name).catch(() => undefined);
    const stdout = (text: string) => events({ type: "stdout", text });
    if (service) stdout(`${await lab.services.serverLogs(app, name, service)}\n`);
    else if (!follow) stdout(await keptWhenGone(lab.logs(app, name), stdout));
    else await lab.followLogs(app, name, stdout, signal ?? new AbortController().signal);
  }

  async exec(request: unknown, events: EventSink, signal?: AbortSignal) {
    const { project, name, argv } = parseRequest("exec", request);
    const output = { stdout: eventStream(events, "stdout"), stderr: eventStream(events, "stderr") };
    const exitCode = await (await this.experiments()).exec(project, name, argv, output, signal);
    return { exitCode };
  }

  async servicesUp(request: unknown) {
    const { project, experiment, names, initialData } = parseRequest("servicesUp", request);
    const { app_name, services } = project.config.config;
    // The client read its working copy's initial data: the laboratory never reads the client's files.
    const up = { app: app_name, experiment, services, initialData: sentInitialData(initialData ?? {}) };
    return (await this.experiments()).services.up(up, names);
  }

  async servicesDown(request: unknown) {
    const { app, experiment, names, force } = parseRequest("servicesDown", request);
    const removed = await (await this.experiments()).services.down(app, experiment, {
      names: names ?? [],
      force: force === true,
    });
    return { removed };
  }

  async servicesList(request: unknown) {
    const { app, experiment } = parseRequest("servicesList", request);
    return (await this.experiments()).services.list(app, experiment, { ping: true });
  }

  async servicesEnv(request: unknown) {
    const { project, experiment, hostReachable } = parseRequest("servicesEnv", request);
    const { config } = project.config;
    const lab = await this.experiments();
    // `environment` expands from the experiment's own variables as its app's does, created or not yet.
    const recorded = lab.registry.get(config.app_name, experiment);
    const identity = experimentIdentity(config, experiment, recorded, publicBase(this.options.env));
    return lab.services.environment(config.app_name, experiment, config.environment, {
      hostReachable: hostReachable === true,
      known: identityVariables(identity),
    });
  }

  async stateGet(request: unknown) {
    const { key, merge } = parseRequest("stateGet", request);
    return lookup((await this.open()).state.store, key, merge);
  }

  async stateCheck(request: unknown) {
    parseRequest("stateCheck", request);
    const { state } = await this.open();
    await state.store.read(["/default"]);
    return {
      file: state.file ?? null,
      provider: state.provider ?? null,
      service: state.service ?? null,
      reachable: true as const,
      warnings: state.warnings,
    };
  }

  async stateSet(request: unknown) {
    const { key, value } = parseRequest("stateSet", request);
    validateKey(key);
    await writableStore((await this.open()).state).write(key, value);
  }

  async stateUnset(request: unknown) {
    const { key } = parseRequest("stateUnset", request);
    validateKey(key);
    return { removed: await writableStore((await this.open()).state).remove(key) };
  }

  async secretsInit(request: unknown) {
    parseRequest("secretsInit", request);
    const { recipient, created } = await initAgeIdentity(labtestHome(this.options.env));
    const secrets: SecretsConfig = {
      provider: "local",
      service: "age",
      options: { recipients: [recipient] },
    };
    return { recipient, created, state: { [SECRETS_KEY]: secrets } };
  }

  async secretsRecipients(request: unknown) {
    parseRequest("secretsRecipients", request);
    return secretsConfig((await this.open()).state.store);
  }

  async gc(request: unknown) {
    const { graceMs, dryRun } = parseRequest("gc", request);
    return (await this.experiments()).collectGarbage(graceMs, { dryRun: dryRun === true });
  }

  async servers(request: unknown) {
    const { id } = parseRequest("servers", request);
    return (await this.experiments()).services.servers(id);
  }

  async retireServers(request: unknown) {
    const { how, id, force } = parseRequest("retireServers", request);
    const { services } = await this.experiments();
    // Without an id: every server no experiment uses (a stopped one is not stopped again).
    const ids =
      id !== undefined
        ? [id]
        : (await services.servers())
            .filter((s) => s.usedBy.length === 0 && (how === "remove" || s.state === "running"))
            .map((s) => s.id);
    const options = { force: force === true };
    for (const each of ids)
      await (how === "stop" ? services.stopServer(each, options) : services.removeServer(each, options));
    return ids;
  }

  async tokenCreate(request: unknown) {
    const { v: _, ...token } = parseRequest("tokenCreate", request);
    return this.access().tokens.create(token);
  }

  async tokenList(request: unknown) {
    parseRequest("tokenList", request);
    return this.access().tokens.list();
  }

  async tokenRevoke(request: unknown) {
    const { name } = parseRequest("tokenRevoke", request);
    this.access().tokens.revoke(name);
    return { revoked: name };
  }

  async audit(request: unknown) {
    const { since } = parseRequest("audit", request);
    return this.access().audit.read(since);
  }

  async close(): Promise<void> {
    this.accessOpened?.tokens.close();
    this.accessOpened?.audit.close();
    if (!this.opened) return;
    const { state, experiments } = await this.opened;
    await experiments.close();
    await state.store.close();
  }
}

/** The laboratory's state store, when it is one labtest writes (a local file or directory). */
function writableStore(opened: OpenedState): WritableStateStore {
  if (!opened.file)
    throw new UsageError("there is no state.json to write to", [
      {
        where: "state.json",
        what: "missing",
        fix: 'create it, e.g. {"provider": "local", "service": "file", "options": {"path": "state.yml"}}',
      },
    ]);
  if (!isWritable(opened.store))
    throw new UsageError(`labtest cannot write ${opened.provider}/${opened.service} state`, [
      {
        where: opened.file,
        what: "only local/file and local/directory stores are written by labtest",
        fix: "write it with the store's own tools",
      },
    ]);
  return opened.store;
}

/** The app's output; when it is gone, what labtest kept of it is written before the error says why. */
async function keptWhenGone(output: Promise<string>, write: (text: string) => void): Promise<string> {
  try {
    return await output;
  } catch (error) {
    if (error instanceof OutputGoneError) write(error.kept);
    throw error;
  }
}

function step(events: EventSink): (text: string) => void {
  return (text) => events({ type: "step", text });
}

/** A stream whose writes become `type` events (a command's output as exec reports it). */
function eventStream(events: EventSink, type: "stdout" | "stderr"): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      events({ type, text: chunk.toString() });
      done();
    },
  });
}
