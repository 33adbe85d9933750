// Experiments as `list` and `status` show them.
import pMap from "p-map";
import type { Problem } from "../errors.js";
import { experimentUrl } from "../lab/router.js";
import type { ServiceStatus } from "../services/index.js";
import type { ExperimentsContext } from "./context.js";
import type { ExperimentRow } from "./registry.js";
import type { AppHealth } from "./runtimes/runtime.js";
import { lastLines } from "./steps.js";

/** An experiment as `list` and `status` show it. */
export interface ExperimentStatus extends Omit<ExperimentRow, "status"> {
  /** The record's status, or for a recorded running app what it does now. */
  status: ExperimentRow["status"] | AppHealth["state"];
  /** How often the app died since its release started, and how it last ended. */
  restarts: number;
  lastExit: string | null;
  url: string;
  services: { name: string; kind: string; provider: string; provisionType: string }[];
  /** Why the app or a service does not serve now (`where`: "app" or the service's name). */
  problems: Problem[];
}

/** How an app answered a request just now: its status and time, or why it did not. */
export type AppAnswer = { path: string; status: number; ms: number } | { path: string; error: string };

/** An experiment as `status NAME` shows it. */
export interface ExperimentDetails extends ExperimentStatus {
  /** Its services, with where the app and the laboratory host reach them and how much each holds. */
  services: ServiceStatus[];
  /** How its app answers its health check path now. */
  answer: AppAnswer;
  /** The last lines its app printed. */
  recentOutput: string[];
}

/** How many lines of the app's output `status` shows. */
const RECENT_LINES = 10;

/** Experiments `list` looks at at once (their apps' state, files and processes). */
const EXPERIMENTS_AT_ONCE = 8;

/** How the app on `port` of this machine answers `path` now (any status is an answer), within 2 s. */
async function answerOf(port: number, path: string): Promise<AppAnswer> {
  const started = performance.now();
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(2000),
      redirect: "manual",
    });
    await response.body?.cancel();
    return { path, status: response.status, ms: Math.round(performance.now() - started) };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const timedOut = (error as Error).name === "TimeoutError";
    return { path, error: timedOut ? "no answer within 2 s" : (cause ?? (error as Error).message) };
  }
}

/** The experiments (of `app`, or all), as `list` shows them. */
export async function listExperiments(lab: ExperimentsContext, app?: string): Promise<ExperimentStatus[]> {
  // The services' records are read once for all; the apps are looked at a few at a time, as
  // each look opens files or sockets and a laboratory may have hundreds of experiments.
  const byExperiment = new Map<string, ServiceStatus[]>();
  for (const s of await lab.services.list(app)) {
    const key = `${s.app}/${s.experiment}`;
    byExperiment.set(key, [...(byExperiment.get(key) ?? []), s]);
  }
  return pMap(
    lab.registry.list(app),
    (row) => describe(lab, row, byExperiment.get(`${row.app}/${row.name}`) ?? []),
    { concurrency: EXPERIMENTS_AT_ONCE },
  );
}

/**
 * An experiment in full, as `status NAME` shows it: with its services' endpoints, how its app
 * answers `healthPath` now, and the last lines it printed.
 */
export async function experimentDetails(
  lab: ExperimentsContext,
  row: ExperimentRow,
  healthPath: string,
): Promise<ExperimentDetails> {
  const services = await lab.services.list(row.app, row.name, { ping: true, sizes: true });
  const [status, answer, output] = await Promise.all([
    describe(lab, row, services),
    row.status === "running" ? answerOf(row.port, healthPath) : { path: healthPath, error: "not running" },
    // What it printed is for the user to read; its status is what matters here.
    lab.runtimes[row.runtime].logs(row).catch(() => ""),
  ]);
  const recentOutput = lastLines(output, RECENT_LINES).split("\n").filter(Boolean);
  return { ...status, services, answer, recentOutput };
}

/** A recorded experiment as `list` and `status` show it; its services' records read unless given. */
export async function describe(
  lab: ExperimentsContext,
  row: ExperimentRow,
  recorded?: ServiceStatus[],
): Promise<ExperimentStatus> {
  const health: AppHealth =
    row.status === "running"
      ? await lab.runtimes[row.runtime].health(row)
      : { state: "stopped", restarts: 0, lastExit: null };
  const recordedServices = recorded ?? (await lab.services.list(row.app, row.name));
  const services = recordedServices.map((s) => ({
    name: s.name,
    kind: s.kind,
    provider: s.provider,
    provisionType: s.provisionType,
  }));
  const problems = [
    ...(health.problem ? [{ where: "app", what: health.problem }] : []),
    ...recordedServices.flatMap((s) => (s.problem ? [{ where: s.name, what: s.problem }] : [])),
  ];
  return {
    ...row,
    status: row.status === "running" ? health.state : row.status,
    restarts: health.restarts,
    lastExit: health.lastExit,
    url: experimentUrl(row.host, lab.publicBase),
    services,
    problems,
  };
}
